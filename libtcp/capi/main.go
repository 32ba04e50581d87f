// Command capi is built with -buildmode=c-shared into libtcpserver.so: the
// C ABI of include/tcpgo.h over the engine package. One thin file per
// concern: handles, options, callbacks, server, client, event queue, common.
package main

func main() {}
