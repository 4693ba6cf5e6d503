/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for src/shared/net.c. */
#include "tests.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

static void roundtrip(const char *in, const char *out) {
        SockAddr a;
        char buf[SOCKADDR_STRLEN];

        ASSERT_OK(sockaddr_parse(in, false, &a));
        ASSERT_OK(sockaddr_format(&a, buf, sizeof buf));
        ASSERT_STREQ(buf, out);
}

TEST(parse) {
        SockAddr a;
        char too_long[200];

        roundtrip("127.0.0.1:8090", "127.0.0.1:8090");
        roundtrip("localhost:9000", "127.0.0.1:9000");
        roundtrip("[::1]:8089", "[::1]:8089");
        roundtrip("0.0.0.0:1", "0.0.0.0:1");
        roundtrip("/run/fusion/monitor.sock", "/run/fusion/monitor.sock");
        ASSERT_OK(sockaddr_parse("127.0.0.1:8090", false, &a));
        ASSERT_EQ_INT(sockaddr_port(&a), 8090);
        ASSERT_TRUE(!sockaddr_is_unix(&a));
        ASSERT_OK(sockaddr_parse("/x", false, &a));
        ASSERT_TRUE(sockaddr_is_unix(&a));
        ASSERT_EQ_INT(sockaddr_port(&a), 0);

        ASSERT_EQ_INT(sockaddr_parse("127.0.0.1:0", false, &a), -EINVAL);
        ASSERT_OK(sockaddr_parse("127.0.0.1:0", true, &a));
        ASSERT_EQ_INT(sockaddr_parse("127.0.0.1:65536", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("127.0.0.1", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("127.0.0.1:", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse(":80", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("example.com:80", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("::1:80", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("[::1]80", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("[]:80", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("1.2.3.4:-1", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("", false, &a), -EINVAL);
        ASSERT_EQ_INT(sockaddr_parse("relative/path", false, &a), -EINVAL);
        too_long[0] = '/';
        memset(too_long + 1, 'a', sizeof too_long - 2);
        too_long[sizeof too_long - 1] = 0;
        ASSERT_EQ_INT(sockaddr_parse(too_long, false, &a), -EINVAL);
}

TEST(listen_connect) {
        SockAddr a, bound = {};
        socklen_t len = sizeof bound.storage;
        int lfd, cfd, afd;
        char buf[SOCKADDR_STRLEN], path[128];

        ASSERT_OK(sockaddr_parse("127.0.0.1:0", true, &a));
        lfd = socket_listen(&a, 16);
        ASSERT_OK(lfd);
        ASSERT_OK(getsockname(lfd, &bound.sa, &len));
        bound.len = len;
        ASSERT_TRUE(sockaddr_port(&bound) > 0);
        cfd = socket_connect_blocking(&bound, 2000);
        ASSERT_OK(cfd);
        ASSERT_OK(fd_set_nonblock(lfd, false));
        afd = accept(lfd, NULL, NULL);
        ASSERT_OK(afd);
        ASSERT_EQ_INT(write(cfd, "hi", 2), 2);
        ASSERT_EQ_INT(read(afd, buf, sizeof buf), 2);
        close(afd);
        close(cfd);
        close(lfd);
        ASSERT_EQ_INT(socket_connect_blocking(&bound, 2000), -ECONNREFUSED);

        snprintf(path, sizeof path, "/tmp/fusion-test-net-%d/sub/s.sock", (int) getpid());
        ASSERT_OK(sockaddr_parse(path, false, &a));
        lfd = socket_listen(&a, 4);
        ASSERT_OK(lfd);
        close(lfd);
        lfd = socket_listen(&a, 4); /* a stale socket file is replaced */
        ASSERT_OK(lfd);
        cfd = socket_connect_blocking(&a, 2000);
        ASSERT_OK(cfd);
        close(cfd);
        close(lfd);
        unlink(path);
        snprintf(path, sizeof path, "rm -rf /tmp/fusion-test-net-%d", (int) getpid());
        ASSERT_EQ_INT(system(path), 0);
}

TEST(listen_fds_none) {
        unsetenv("LISTEN_FDS");
        ASSERT_EQ_INT(listen_fds_init(), 0);
        ASSERT_EQ_INT(listen_fds_take("client"), -ENOENT);
        listen_fds_done();
}

int main(void) {
        RUN(parse);
        RUN(listen_connect);
        RUN(listen_fds_none);
        return 0;
}
