// Written only against nilshenrich/TCP_ServerClient v2's API, the way v2's
// example server is: headers from <tcp/...>, `using namespace tcp`, OpenSSL
// NIDs, std::bind'ed members and lambdas, forward streams to files.
// (TCPGO_TEST_LOOPBACK adds the one tcpgo call that keeps the test on
// loopback; the program is also compiled without it.)
#include <tcp/TcpServer.h>
#include <tcp/TlsServer.h>

#include <fstream>

using namespace std;
using namespace tcp;

class ExampleServer
{
public:
    ExampleServer(const string &fileDir) : fileDir{fileDir}
    {
        tcpServer.setWorkOnMessage(::std::bind(&ExampleServer::onTcpMessage, this, ::std::placeholders::_1, ::std::placeholders::_2));
        tlsServer.setWorkOnMessage(::std::bind(&ExampleServer::onTlsMessage, this, ::std::placeholders::_1, ::std::placeholders::_2));
        tlsServer.setWorkOnEstablished([this](const int clientId)
                                       { lock_guard<mutex> lck{m}; ou = tlsServer.getSubjPartFromClientCert(clientId, nullptr, NID_organizationalUnitName); });
        streamServer.setCreateForwardStream([this](const int clientId) -> ofstream *
                                            { return new ofstream{this->fileDir + "/FileForClient_"s + to_string(clientId)}; });
        streamServer.setWorkOnClosed([this](const int clientId)
                                     { lock_guard<mutex> lck{m}; closedStreamClients.push_back(clientId); });
#ifdef TCPGO_TEST_LOOPBACK
        tcpServer.setBindAddress("127.0.0.1");
        tlsServer.setBindAddress("127.0.0.1");
        streamServer.setBindAddress("127.0.0.1");
#endif
    }
    virtual ~ExampleServer() {}

    // v2 style: try ports until one is free
    int start(int &port, const string &certs)
    {
        int code;
        for (; port < 65000; port += 3)
        {
            code = tcpServer.start(port);
            if (code == SERVER_ERROR_START_BIND_PORT)
                continue;
            if (code != SERVER_START_OK)
                return code;
            code = tlsServer.start(port + 1, (certs + "/rsa/ca.pem").c_str(), (certs + "/rsa/server.pem").c_str(), (certs + "/rsa/server.key").c_str());
            if (code == SERVER_START_OK)
                code = streamServer.start(port + 2);
            if (code == SERVER_START_OK)
                return code;
            tcpServer.stop();
            tlsServer.stop();
            if (code != SERVER_ERROR_START_BIND_PORT)
                return code;
        }
        return SERVER_ERROR_START_BIND_PORT;
    }

    void stop()
    {
        tcpServer.stop();
        tlsServer.stop();
        streamServer.stop();
    }

    bool running() const { return tcpServer.isRunning() && tlsServer.isRunning() && streamServer.isRunning(); }
    string clientOu() { lock_guard<mutex> lck{m}; return ou; }
    vector<int> streamClientsClosed() { lock_guard<mutex> lck{m}; return closedStreamClients; }
    size_t tcpClients() const { return tcpServer.getAllClientIds().size(); }
    string firstTcpClientIp() const
    {
        vector<int> ids{tcpServer.getAllClientIds()};
        return ids.empty() ? "none" : tcpServer.getClientIp(ids[0]);
    }

private:
    void onTcpMessage(const int clientId, const string msg) { tcpServer.sendMsg(clientId, "TCP echo: " + msg); }
    void onTlsMessage(const int clientId, const string msg) { tlsServer.sendMsg(clientId, "TLS echo: " + msg); }

    string fileDir;
    TcpServer tcpServer{'\n'};
    TlsServer tlsServer{'\0', 4096};
    TcpServer streamServer;
    mutex m;
    string ou;
    vector<int> closedStreamClients;
};

ExampleServer *makeServer(const string &fileDir) { return new ExampleServer{fileDir}; }
int startServer(ExampleServer *s, int &port, const string &certs) { return s->start(port, certs); }
void stopServer(ExampleServer *s) { s->stop(); }
bool serverRunning(ExampleServer *s) { return s->running(); }
string serverClientOu(ExampleServer *s) { return s->clientOu(); }
size_t serverTcpClients(ExampleServer *s) { return s->tcpClients(); }
string serverTcpClientIp(ExampleServer *s) { return s->firstTcpClientIp(); }
vector<int> serverStreamClientsClosed(ExampleServer *s) { return s->streamClientsClosed(); }
void deleteServer(ExampleServer *s) { delete s; }
