/* Unit tests of the closer (service/fdclose.c): what closes inline, what
 * goes to a closer thread, and that closes stuck forever (a FUSE server
 * that never answers FLUSH, here a close function waiting on a gate) hold
 * neither the caller nor the other closes, up to the thread cap. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdclose.h"

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* Polls (no wall-clock limit on the closer, only on the test). */
static bool wait_closed(int fd) {
        for (int i = 0; i < 10000 && fd_is_open(fd); i++)
                g_usleep(1000);
        return !fd_is_open(fd);
}

static void test_quick_kinds_close_inline(void) {
        FdCloseStats before, after;
        int p[2], s[2], m, e;

        fdclose_get_stats(&before);
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), ==, 0);
        m = memfd_create("test-fdclose", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        g_assert_cmpint(m, >=, 0);
        e = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpint(e, >=, 0);

        g_assert_true(fdclose_is_quick(p[0], FD_KIND_FIFO));
        g_assert_true(fdclose_is_quick(s[0], FD_KIND_SOCKET));
        g_assert_true(fdclose_is_quick(m, FD_KIND_MEMFD));

        /* Cached kinds, and classified ones. */
        g_assert_cmpint(fdclose_kind(p[0], FD_KIND_FIFO), ==, -1);
        g_assert_cmpint(fdclose_kind(s[0], FD_KIND_SOCKET), ==, -1);
        g_assert_cmpint(fdclose_caller_fd(p[1]), ==, -1);
        g_assert_cmpint(fdclose_caller_fd(s[1]), ==, -1);
        g_assert_cmpint(fdclose_caller_fd(m), ==, -1);
        g_assert_cmpint(fdclose_caller_fd(e), ==, -1);
        /* Closed by the time the call returns. */
        for (int fd = 0; fd < 2; fd++) {
                g_assert_false(fd_is_open(p[fd]));
                g_assert_false(fd_is_open(s[fd]));
        }
        g_assert_false(fd_is_open(m));
        g_assert_false(fd_is_open(e));
        fdclose_get_stats(&after);
        g_assert_cmpuint(after.deferred, ==, before.deferred);
        g_assert_cmpuint(after.inline_closed, ==, before.inline_closed + 6);
        g_assert_cmpint(fdclose_kind(-1, FD_KIND_REGULAR), ==, -1);
}

static void test_others_go_to_a_closer(void) {
        FdCloseStats before, after;
        int f, d, u;

        fdclose_get_stats(&before);
        f = open("/dev/null", O_RDONLY | O_CLOEXEC);
        d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(f, >=, 0);
        g_assert_cmpint(d, >=, 0);
        /* A regular file claiming to be a memfd (a FUSE path named
         * "/memfd:x"): no seals, so not quick. */
        g_assert_false(fdclose_is_quick(f, FD_KIND_MEMFD));
        g_assert_false(fdclose_is_quick(f, FD_KIND_CHAR_DEVICE));
        g_assert_false(fdclose_is_quick(d, FD_KIND_DIRECTORY));
        g_assert_false(fdclose_is_quick(d, FD_KIND_REGULAR));

        fdclose_kind(f, FD_KIND_MEMFD);
        fdclose_caller_fd(d);
        if (u >= 0) {
                /* TCP: its last close may linger. */
                g_assert_false(fdclose_is_quick(u, FD_KIND_SOCKET));
                fdclose_kind(u, FD_KIND_SOCKET);
        } else
                g_test_message("no AF_INET socket here: %s", g_strerror(errno));
        g_assert_true(fdclose_wait_idle(10000));
        g_assert_false(fd_is_open(f));
        g_assert_false(fd_is_open(d));
        fdclose_get_stats(&after);
        g_assert_cmpuint(after.deferred, ==, before.deferred + 2 + (u >= 0));
        g_assert_cmpuint(after.threads, >=, 1);
        g_assert_cmpuint(after.queued, ==, 0);
}

/* A close function that waits on a gate for fds marked stuck: a FUSE
 * server that does not answer FLUSH, for as long as the test says. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static bool stuck[1024];

static int gated_close(int fd) {
        pthread_mutex_lock(&gate_lock);
        while (fd < (int) G_N_ELEMENTS(stuck) && stuck[fd] && !gate_open)
                pthread_cond_wait(&gate_cond, &gate_lock);
        pthread_mutex_unlock(&gate_lock);
        return close(fd);
}

static int stuck_fd(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(fd, <, (int) G_N_ELEMENTS(stuck));
        pthread_mutex_lock(&gate_lock);
        stuck[fd] = true;
        pthread_mutex_unlock(&gate_lock);
        return fd;
}

static unsigned busy(void) {
        FdCloseStats s;
        fdclose_get_stats(&s);
        return s.busy;
}

static void test_stuck_closes_hold_only_their_thread(void) {
        int held[FDCLOSE_THREADS_MAX], one, more[3];
        FdCloseStats s;

        fdclose_set_close_function(gated_close);

        /* One stuck close: another fd is still closed, by another thread. */
        held[0] = stuck_fd();
        fdclose_kind(held[0], FD_KIND_REGULAR);
        for (int i = 0; i < 10000 && busy() < 1; i++)
                g_usleep(1000);
        g_assert_cmpuint(busy(), ==, 1);
        one = open("/dev/null", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(one, >=, 0);
        fdclose_kind(one, FD_KIND_REGULAR);
        g_assert_true(wait_closed(one));
        g_assert_true(fd_is_open(held[0]));

        /* Every thread stuck: the cap holds, and fds wait in the queue
         * (still open) without the caller waiting. */
        for (unsigned i = 1; i < FDCLOSE_THREADS_MAX; i++) {
                held[i] = stuck_fd();
                fdclose_kind(held[i], FD_KIND_REGULAR);
        }
        for (int i = 0; i < 10000 && busy() < FDCLOSE_THREADS_MAX; i++)
                g_usleep(1000);
        for (size_t i = 0; i < G_N_ELEMENTS(more); i++) {
                more[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                g_assert_cmpint(more[i], >=, 0);
                fdclose_kind(more[i], FD_KIND_CHAR_DEVICE);
        }
        fdclose_get_stats(&s);
        g_test_message("stuck: threads %u busy %u queued %u", s.threads, s.busy, s.queued);
        g_assert_cmpuint(s.threads, ==, FDCLOSE_THREADS_MAX);
        g_assert_cmpuint(s.busy, ==, FDCLOSE_THREADS_MAX);
        g_assert_cmpuint(s.queued, ==, G_N_ELEMENTS(more));
        g_assert_false(fdclose_wait_idle(50));
        for (size_t i = 0; i < G_N_ELEMENTS(more); i++)
                g_assert_true(fd_is_open(more[i]));

        /* The server answers: everything is closed, nothing leaks. */
        pthread_mutex_lock(&gate_lock);
        gate_open = true;
        pthread_cond_broadcast(&gate_cond);
        pthread_mutex_unlock(&gate_lock);
        g_assert_true(fdclose_wait_idle(10000));
        for (unsigned i = 0; i < FDCLOSE_THREADS_MAX; i++)
                g_assert_false(fd_is_open(held[i]));
        for (size_t i = 0; i < G_N_ELEMENTS(more); i++)
                g_assert_false(fd_is_open(more[i]));
        fdclose_get_stats(&s);
        g_assert_cmpuint(s.threads, ==, FDCLOSE_THREADS_MAX);
        g_assert_cmpuint(s.queued, ==, 0);
        fdclose_set_close_function(NULL);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/fdclose/quick-kinds-close-inline", test_quick_kinds_close_inline);
        g_test_add_func("/fdclose/others-go-to-a-closer", test_others_go_to_a_closer);
        /* Last: it leaves every closer thread started. */
        g_test_add_func("/fdclose/stuck-closes-hold-only-their-thread", test_stuck_closes_hold_only_their_thread);
        return g_test_run();
}
