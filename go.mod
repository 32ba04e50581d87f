module github.com/tcpgo/tcpgo

go 1.22
