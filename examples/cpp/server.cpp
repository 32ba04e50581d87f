// Example server, like nilshenrich/TCP_ServerClient v2's: a TCP server on
// port 8081 and a mutual-TLS server on port 8082, both in fragmented mode
// (messages end with '\n'), answering every message. Stop with Ctrl-C.
//
//   ./CreateCerts.sh            # once: makes certs/ with the openssl tool
//   ./server [CERT_DIR]         # then ./client in a second terminal
//
// Built by `make` as build/examples/cpp/server. Listens on 127.0.0.1 only
// (setBindAddress is a tcpgo extension; without it the servers listen on
// every interface, as in v2).
#include <tcp/TcpServer.h>
#include <tcp/TlsServer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>

using namespace std;
using namespace tcp;

namespace
{
    volatile sig_atomic_t stopRequested = 0;
    void onSignal(int) { stopRequested = 1; }

    string shout(string msg)
    {
        transform(msg.begin(), msg.end(), msg.begin(), [](unsigned char c) { return static_cast<char>(toupper(c)); });
        return msg;
    }
}

class ExampleServer
{
public:
    ExampleServer()
    {
        // member functions, bound as in v2's README
        tcpServer.setWorkOnEstablished(::std::bind(&ExampleServer::tcpEstablished, this, ::std::placeholders::_1));
        tcpServer.setWorkOnMessage(::std::bind(&ExampleServer::tcpMessage, this, ::std::placeholders::_1, ::std::placeholders::_2));
        tcpServer.setWorkOnClosed([](const int clientId) { cout << "TCP client " << clientId << " closed" << endl; });

        // lambdas
        tlsServer.setWorkOnEstablished([this](const int clientId) {
            cout << "TLS client " << clientId << " connected from " << tlsServer.getClientIp(clientId)
                 << ": CN=" << tlsServer.getSubjPartFromClientCert(clientId, nullptr, NID_commonName)
                 << ", OU=" << tlsServer.getSubjPartFromClientCert(clientId, nullptr, NID_organizationalUnitName) << endl;
        });
        tlsServer.setWorkOnMessage([this](const int clientId, const string msg) {
            cout << "TLS client " << clientId << ": " << msg << endl;
            tlsServer.sendMsg(clientId, "TLS server got: " + shout(msg));
        });
        tlsServer.setWorkOnClosed([](const int clientId) { cout << "TLS client " << clientId << " closed" << endl; });

        tcpServer.setBindAddress("127.0.0.1");
        tlsServer.setBindAddress("127.0.0.1");
    }

    int start(const string &certs)
    {
        int code = tcpServer.start(8081);
        if (code != SERVER_START_OK)
        {
            cerr << "TCP server: start failed with " << code << " (" << tcpServer.getLastError() << ")" << endl;
            return code;
        }
        code = tlsServer.start(8082, (certs + "/ca_cert.pem").c_str(), (certs + "/server_cert.pem").c_str(),
                               (certs + "/server_key.pem").c_str());
        if (code != SERVER_START_OK)
        {
            cerr << "TLS server: start failed with " << code << " (" << tlsServer.getLastError() << ")" << endl;
            tcpServer.stop();
            return code;
        }
        cout << "TCP server on 127.0.0.1:8081, TLS server on 127.0.0.1:8082; Ctrl-C stops" << endl;
        return SERVER_START_OK;
    }

    void stop()
    {
        tcpServer.stop();
        tlsServer.stop();
    }

private:
    void tcpEstablished(const int clientId)
    {
        cout << "TCP client " << clientId << " connected from " << tcpServer.getClientIp(clientId) << endl;
    }

    void tcpMessage(const int clientId, const string msg)
    {
        cout << "TCP client " << clientId << ": " << msg << endl;
        tcpServer.sendMsg(clientId, "TCP server got: " + shout(msg));
    }

    TcpServer tcpServer{'\n'};
    TlsServer tlsServer{'\n'};
};

int main(int argc, char **argv)
{
    const string certs = argc > 1 ? argv[1] : "certs";
    signal(SIGINT, onSignal);
    signal(SIGTERM, onSignal);

    ExampleServer server;
    if (server.start(certs) != SERVER_START_OK)
        return 1;
    while (!stopRequested)
        this_thread::sleep_for(chrono::milliseconds(100));
    server.stop();
    cout << "stopped" << endl;
    return 0;
}
