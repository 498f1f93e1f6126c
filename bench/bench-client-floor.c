/* bench-client-floor SOCKET OP: the least any client of gpukeeperd does,
 * as a program of its own, for bench-status's floor: start (libc only),
 * connect, send one request `{"v":1,"id":1,"op":OP}`, read the whole reply
 * frame, exit. No JSON library, no parsing, no output: what is left is
 * exec + connect + accept + one round trip + the reply's bytes.
 * Exit status 0 when a whole reply frame arrived, 1 otherwise. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_all(int fd, char *buf, size_t n)
{
        for (size_t got = 0; got < n;) {
                ssize_t k = read(fd, buf + got, n - got);

                if (k <= 0)
                        return -1;
                got += (size_t)k;
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char req[128], *reply;
        uint32_t len;
        int fd, n;

        if (argc != 3 || strlen(argv[1]) >= sizeof sa.sun_path)
                return 2;
        strcpy(sa.sun_path, argv[1]);
        n = snprintf(req + 4, sizeof req - 4, "{\"v\":1,\"id\":1,\"op\":\"%s\"}", argv[2]);
        if (n <= 0 || (size_t)n >= sizeof req - 4)
                return 2;
        len = htonl((uint32_t)n);
        memcpy(req, &len, 4);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            write(fd, req, 4 + (size_t)n) != 4 + n || read_all(fd, (char *)&len, 4) < 0)
                return 1;
        len = ntohl(len);
        reply = malloc(len ? len : 1);
        if (!reply || read_all(fd, reply, len) < 0)
                return 1;
        return 0;
}
