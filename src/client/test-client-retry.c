/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-client-retry — client_put() against scripted fake servers: it must
 * retry the same msgid through NOLEASE, a dropped connection, REDIRECT and
 * NOPRIMARY, stop at permanent errors, and give up at the deadline with the
 * right exit code. The fakes are threads on loopback sockets.
 */
#include "tests.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "client-lib.h"

/* One scripted endpoint: for the n-th request it receives (on any
 * connection) it sends replies[n] ("" = close the connection). After the
 * script it answers with the last entry. */
typedef struct Fake {
        int fd;
        char address[64];
        const char *replies[8];
        char requests[8][128];
        unsigned n_requests;
        pthread_t thread;
        const char *subscribe_lines;   /* sent to a SUBSCRIBE connection ("NOPRIMARY\n" if NULL) */
        unsigned n_subscribes;
} Fake;

typedef struct Subscriber {
        FILE *in;
        int fd;
} Subscriber;

/* A SUBSCRIBE connection stays open: serve it on its own thread (the fake
 * monitor answers other connections meanwhile) until the client closes it. */
static void *fake_subscriber(void *userdata) {
        Subscriber *s = userdata;
        char line[120];

        while (fgets(line, sizeof(line), s->in))
                ;
        fclose(s->in);
        free(s);
        return NULL;
}

static void *fake_run(void *userdata) {
        Fake *f = userdata;

        for (;;) {
                int c = accept(f->fd, NULL, NULL);
                if (c < 0)
                        return NULL;
                FILE *in = fdopen(c, "r");
                char line[120];

                while (in && fgets(line, sizeof(line), in)) {
                        unsigned i = MIN(f->n_requests, ELEMENTSOF(f->replies) - 1);
                        const char *reply;

                        while (i > 0 && !f->replies[i])
                                i--;
                        reply = f->replies[i];
                        line[strcspn(line, "\n")] = 0;
                        if (strcmp(line, "SUBSCRIBE") == 0) {
                                const char *l = f->subscribe_lines ?: "NOPRIMARY\n";
                                Subscriber *sub = malloc(sizeof(*sub));
                                pthread_t t;

                                f->n_subscribes++;
                                if (write(c, l, strlen(l)) < 0 || !sub)
                                        break;
                                *sub = (Subscriber){ .in = in, .fd = c };
                                ASSERT_EQ_INT(pthread_create(&t, NULL, fake_subscriber, sub), 0);
                                pthread_detach(t);
                                in = NULL;
                                c = -1;
                                break;
                        }
                        if (f->n_requests < ELEMENTSOF(f->requests))
                                snprintf(f->requests[f->n_requests], sizeof(f->requests[0]), "%s", line);
                        f->n_requests++;
                        if (!reply)
                                reply = "ERR BADCMD script ended\n";
                        if (!*reply)
                                break;
                        if (write(c, reply, strlen(reply)) < 0)
                                break;
                }
                if (in)
                        fclose(in);
                else if (c >= 0)
                        close(c);
        }
}

static void fake_start(Fake *f) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);

        f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(f->fd >= 0);
        ASSERT_EQ_INT(bind(f->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ASSERT_EQ_INT(listen(f->fd, 16), 0);
        ASSERT_EQ_INT(getsockname(f->fd, (struct sockaddr *) &sa, &len), 0);
        snprintf(f->address, sizeof(f->address), "127.0.0.1:%u", ntohs(sa.sin_port));
        ASSERT_EQ_INT(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(Fake *f) {
        shutdown(f->fd, SHUT_RDWR);
        pthread_join(f->thread, NULL);
        close(f->fd);
}

static Client *new_client(const char *monitor, int deadline_ms) {
        ClientOptions o = { .monitor = monitor, .timeout_ms = 1000, .deadline_ms = deadline_ms,
                            .config_path = NULL };
        Client *c = NULL;
        char *error = NULL;

        /* built-in defaults when no config exists at the default path; with
         * a config installed that is fine too: --monitor overrides it */
        int r = client_new(&o, &c, &error);
        if (r < 0) {
                fprintf(stderr, "client_new: %s\n", error ?: strerror(-r));
                free(error);
                exit(EXIT_TEST_SKIP);
        }
        return c;
}

TEST(retries_keep_msgid) {
        static Fake server2 = { .replies = { "OK 7\n" } };
        static Fake server1 = {};
        static Fake monitor = {};
        static char who[128], redirect[128];
        uint64_t index = 0;

        fake_start(&server2);
        snprintf(redirect, sizeof(redirect), "REDIRECT %s\n", server2.address);
        server1.replies[0] = "ERR NOLEASE lease expired\n";
        server1.replies[1] = "";                 /* connection dropped */
        server1.replies[2] = redirect;
        fake_start(&server1);
        snprintf(who, sizeof(who), "PRIMARY primary %s 3\n", server1.address);
        monitor.replies[0] = "NOPRIMARY\n";
        monitor.replies[1] = who;
        fake_start(&monitor);

        Client *c = new_client(monitor.address, 10000);
        usec_t t0 = now_usec();
        int r = client_put(c, "id-1", "hello world", 11, &index);
        if (r < 0)
                fprintf(stderr, "last error: %s (requests: monitor %u, server1 %u, server2 %u)\n",
                        c->last_error, monitor.n_requests, server1.n_requests, server2.n_requests);
        ASSERT_OK(r);
        ASSERT_EQ_U64(index, 7);
        ASSERT_EQ_INT(c->last_failure, CLIENT_FAIL_NONE);
        /* backoffs 5+10+20 ms at least (NOPRIMARY, NOLEASE, dropped) */
        ASSERT_TRUE(now_usec() - t0 >= 35 * USEC_PER_MSEC);

        ASSERT_EQ_INT(server1.n_requests, 3);
        for (unsigned i = 0; i < 3; i++)
                ASSERT_STREQ(server1.requests[i], "PUT id-1 hello world");
        ASSERT_EQ_INT(server2.n_requests, 1);
        ASSERT_STREQ(server2.requests[0], "PUT id-1 hello world");
        ASSERT_TRUE(monitor.n_requests >= 2);
        ASSERT_STREQ(monitor.requests[0], "WHO");

        /* the connection to server2 is kept for the next message */
        ASSERT_OK(client_put(c, "id-2", "x", 1, &index));
        ASSERT_EQ_U64(index, 7);
        ASSERT_EQ_INT(server2.n_requests, 2);
        ASSERT_STREQ(server2.requests[1], "PUT id-2 x");

        client_free(c);
        fake_stop(&monitor);
        fake_stop(&server1);
        fake_stop(&server2);
}

TEST(permanent_error) {
        static Fake server = { .replies = { "ERR TOOLONG payload too long\n" } };

        fake_start(&server);
        Client *c = new_client("127.0.0.1:1", 10000);
        c->opts.server = server.address;   /* --server: no monitor */
        uint64_t index = 0;
        ASSERT_EQ_INT(client_put(c, "id", "p", 1, &index), -EBADMSG);
        ASSERT_EQ_INT(server.n_requests, 1);
        ASSERT_TRUE(strstr(c->last_error, "TOOLONG") != NULL);
        ASSERT_EQ_INT(client_exit_code(c, -EBADMSG), EXIT_REQUEST_FAILED);

        /* a payload with a newline never reaches the wire */
        ASSERT_EQ_INT(client_put(c, "id", "a\nb", 3, &index), -EBADMSG);
        ASSERT_EQ_INT(server.n_requests, 1);
        client_free(c);
        fake_stop(&server);
}

TEST(deadline_no_primary) {
        static Fake monitor = { .replies = { "NOPRIMARY\n" } };
        uint64_t index;

        fake_start(&monitor);
        Client *c = new_client(monitor.address, 150);
        usec_t t0 = now_usec();
        ASSERT_EQ_INT(client_put(c, "id", "p", 1, &index), -ETIMEDOUT);
        usec_t took = now_usec() - t0;
        ASSERT_TRUE(took >= 140 * USEC_PER_MSEC);
        ASSERT_TRUE(took < 2 * USEC_PER_SEC);
        ASSERT_EQ_INT(client_exit_code(c, -ETIMEDOUT), EXIT_NO_PRIMARY);
        /* 5, 10, 20, 40, 80 ms backoffs fit in 150 ms: at least 4 WHOs */
        ASSERT_TRUE(monitor.n_requests >= 4);
        client_free(c);
        fake_stop(&monitor);
}

TEST(change_cuts_backoff) {
        /* six NOPRIMARY answers would cost 5+10+20+40+80+160 = 315 ms of
         * backoff; the monitor's subscription announces changes at once, so
         * each backoff ends early and the PUT is through well before that */
        static Fake server = { .replies = { "OK 9\n" } };
        static Fake monitor = {};
        static char who[128];
        uint64_t index = 0;

        fake_start(&server);
        snprintf(who, sizeof(who), "PRIMARY primary %s 2\n", server.address);
        for (unsigned i = 0; i < 6; i++)
                monitor.replies[i] = "NOPRIMARY\n";
        monitor.replies[6] = who;
        monitor.subscribe_lines = "NOPRIMARY\nNOPRIMARY\nNOPRIMARY\nNOPRIMARY\nNOPRIMARY\nNOPRIMARY\nNOPRIMARY\n";
        fake_start(&monitor);

        Client *c = new_client(monitor.address, 10000);
        usec_t t0 = now_usec();
        ASSERT_OK(client_put(c, "id-9", "x", 1, &index));
        usec_t took = now_usec() - t0;
        ASSERT_EQ_U64(index, 9);
        ASSERT_EQ_INT(monitor.n_subscribes, 1);
        ASSERT_EQ_INT(monitor.n_requests, 7);
        fprintf(stderr, "put through after 6 NOPRIMARY answers in %" PRIu64 " ms\n", took / USEC_PER_MSEC);
        ASSERT_TRUE(took < 150 * USEC_PER_MSEC);
        client_free(c);
        fake_stop(&monitor);
        fake_stop(&server);
}

TEST(who) {
        static Fake monitor = { .replies = { "PRIMARY backup 127.0.0.1:8089 4\n", "NOPRIMARY\n", "garbage\n" } };
        PrimaryInfo p;

        fake_start(&monitor);
        Client *c = new_client(monitor.address, 1000);
        ASSERT_EQ_INT(client_who(c, &p), 1);
        ASSERT_TRUE(p.known);
        ASSERT_STREQ(p.name, "backup");
        ASSERT_STREQ(p.address, "127.0.0.1:8089");
        ASSERT_EQ_U64(p.term, 4);
        ASSERT_EQ_INT(client_who(c, &p), 0);
        ASSERT_TRUE(!p.known);
        ASSERT_EQ_INT(client_who(c, &p), -EBADMSG);
        client_free(c);
        fake_stop(&monitor);
}

int main(void) {
        RUN(retries_keep_msgid);
        RUN(permanent_error);
        RUN(deadline_no_primary);
        RUN(change_cuts_backoff);
        RUN(who);
        return 0;
}
