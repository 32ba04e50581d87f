// The client half, written against v2's API with the headers included by
// bare name (-I<prefix>/include/tcp), as some v2 programs do.
#include "TcpClient.h"
#include "TlsClient.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <condition_variable>
#include <fstream>
#include <sstream>

using namespace std;
using namespace tcp;

class ExampleServer;
ExampleServer *makeServer(const string &fileDir);
int startServer(ExampleServer *s, int &port, const string &certs);
void stopServer(ExampleServer *s);
bool serverRunning(ExampleServer *s);
string serverClientOu(ExampleServer *s);
size_t serverTcpClients(ExampleServer *s);
string serverTcpClientIp(ExampleServer *s);
vector<int> serverStreamClientsClosed(ExampleServer *s);
void deleteServer(ExampleServer *s);

namespace
{
    mutex m;
    condition_variable cv;
    vector<string> received;

    void worker_message(string msg)
    {
        lock_guard<mutex> lck{m};
        received.push_back(msg);
        cv.notify_all();
    }

    bool waitFor(size_t n)
    {
        unique_lock<mutex> lck{m};
        return cv.wait_for(lck, chrono::seconds(10), [n] { return received.size() >= n; });
    }

    int fail(const string &why)
    {
        cerr << "v2compat: " << why << endl;
        return 1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fail("usage: v2compat FIRST_PORT CERT_DIR FILE_DIR");
    int port{atoi(argv[1])};
    const string certs{argv[2]};
    const string files{argv[3]};

    ExampleServer *server{makeServer(files)};
    int code{startServer(server, port, certs)};
    if (code != 0)
        return fail("server start: " + to_string(code));

    TcpClient tcpClient{'\n'};
    TlsClient tlsClient{'\0', 4096};
    ostringstream streamOut;
    TcpClient streamClient{streamOut};
    tcpClient.setWorkOnMessage(&worker_message);
    tlsClient.setWorkOnMessage([](const string msg) { worker_message(msg); });

    if ((code = tcpClient.start("localhost", port)) != CLIENT_START_OK)
        return fail("TCP client start: " + to_string(code));
    if ((code = tlsClient.start("127.0.0.1", port + 1, (certs + "/rsa/ca.pem").c_str(), (certs + "/rsa/client.pem").c_str(), (certs + "/rsa/client.key").c_str())) != CLIENT_START_OK)
        return fail("TLS client start: " + to_string(code));
    if ((code = streamClient.start("127.0.0.1", port + 2)) != CLIENT_START_OK)
        return fail("stream client start: " + to_string(code));
    if (tcpClient.start("127.0.0.1", port) != -1)
        return fail("second start did not return -1");

    if (!tcpClient.sendMsg("Hello TCP") || !tlsClient.sendMsg("Hello TLS"))
        return fail("sendMsg");
    if (tcpClient.sendMsg("with\ndelimiter"))
        return fail("a message with the delimiter was sent");
    if (!streamClient.sendMsg("continuous data"))
        return fail("stream sendMsg");
    if (!waitFor(2))
        return fail("no answers");
    {
        lock_guard<mutex> lck{m};
        vector<string> want{"TCP echo: Hello TCP", "TLS echo: Hello TLS"};
        vector<string> got{received};
        sort(got.begin(), got.end());
        if (got != want)
            return fail("unexpected answers: " + got[0] + " / " + got[1]);
    }
    if (serverClientOu(server) != "client")
        return fail("client certificate OU: '" + serverClientOu(server) + "'");
    if (serverTcpClients(server) != 1)
        return fail("TCP server lists " + to_string(serverTcpClients(server)) + " clients");
    const string ip{serverTcpClientIp(server)};
    if (ip != "127.0.0.1" && ip != "::1")
        return fail("client ip " + ip);

    tcpClient.stop();
    tlsClient.stop();
    streamClient.stop();
    // The stream client's data reaches the server before its end does; a
    // stop before the server read it would drop it (a stop closes at once).
    for (int i = 0; i < 1000 && serverStreamClientsClosed(server).empty(); i++)
        this_thread::sleep_for(chrono::milliseconds(10));
    stopServer(server);
    stopServer(server); // idempotent
    if (serverRunning(server) || tcpClient.isRunning())
        return fail("still running after stop");

    vector<int> closed{serverStreamClientsClosed(server)};
    if (closed.size() != 1)
        return fail("stream client not closed");
    ifstream in{files + "/FileForClient_" + to_string(closed[0])};
    stringstream content;
    content << in.rdbuf();
    if (content.str() != "continuous data")
        return fail("forward stream file holds '" + content.str() + "'");
    deleteServer(server);
    cout << "v2compat: OK (ports " << port << ".." << port + 2 << ")" << endl;
    return 0;
}
