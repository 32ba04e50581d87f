// Example client, like nilshenrich/TCP_ServerClient v2's: connects to the
// example server's TCP (8081) and TLS (8082) ports, sends a few messages,
// prints the answers and stops.
//
//   ./client [CERT_DIR] [HOST]
#include <tcp/TcpClient.h>
#include <tcp/TlsClient.h>

#include <chrono>
#include <condition_variable>

using namespace std;
using namespace tcp;

namespace
{
    mutex m;
    condition_variable cv;
    int answers = 0;

    void worker_message(const string msg)
    {
        lock_guard<mutex> lock{m};
        cout << "answer: " << msg << endl;
        answers++;
        cv.notify_all();
    }
}

int main(int argc, char **argv)
{
    const string certs = argc > 1 ? argv[1] : "certs";
    const string host = argc > 2 ? argv[2] : "127.0.0.1";

    TcpClient tcpClient{'\n'};
    TlsClient tlsClient{'\n'};
    tcpClient.setWorkOnMessage(&worker_message);
    tlsClient.setWorkOnMessage(&worker_message);

    int code = tcpClient.start(host, 8081);
    if (code != CLIENT_START_OK)
    {
        cerr << "TCP client: start failed with " << code << " (" << tcpClient.getLastError() << ")" << endl;
        return 1;
    }
    code = tlsClient.start(host, 8082, (certs + "/ca_cert.pem").c_str(), (certs + "/client_cert.pem").c_str(),
                           (certs + "/client_key.pem").c_str());
    if (code != CLIENT_START_OK)
    {
        cerr << "TLS client: start failed with " << code << " (" << tlsClient.getLastError() << ")" << endl;
        return 1;
    }
    cout << "connected; server certificate OU=" << tlsClient.getSubjPartFromServerCert(NID_organizationalUnitName) << endl;

    int sent = 0;
    for (const string msg : {"hello", "how are you?", "bye"})
    {
        sent += tcpClient.sendMsg("TCP " + msg);
        sent += tlsClient.sendMsg("TLS " + msg);
    }

    unique_lock<mutex> lock{m};
    const bool all = cv.wait_for(lock, chrono::seconds(5), [&] { return answers == sent; });
    lock.unlock();
    tcpClient.stop();
    tlsClient.stop();
    if (!all)
    {
        cerr << "only " << answers << " of " << sent << " answers" << endl;
        return 1;
    }
    return 0;
}
