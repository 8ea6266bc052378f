/* Unit tests of fd classification, reopening and sealing (service/fdinfo.c). */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "fdinfo.h"

static FdKind classify(int fd) {
        FdKind k = _FD_KIND_MAX;
        g_assert_cmpint(fdinfo_classify(fd, &k), ==, 0);
        return k;
}

static void test_kinds(void) {
        int p[2], s[2], fd;
        sigset_t mask;

        fd = memfd_create("t", MFD_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "memfd");
        close(fd);

        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "regular");
        close(fd);

        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "directory");
        close(fd);

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpstr(fdkind_to_string(classify(p[0])), ==, "fifo");
        close(p[0]);
        close(p[1]);

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), ==, 0);
        g_assert_cmpstr(fdkind_to_string(classify(s[0])), ==, "socket");
        close(s[0]);
        close(s[1]);

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "char-device");
        close(fd);

        fd = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "eventfd");
        close(fd);

        fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "timerfd");
        close(fd);

        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        fd = signalfd(-1, &mask, SFD_CLOEXEC);
        g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "signalfd");
        close(fd);

        fd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        if (fd >= 0) {
                g_assert_cmpstr(fdkind_to_string(classify(fd)), ==, "pidfd");
                close(fd);
        }
}

static void test_reopen_narrows(void) {
        int fd = memfd_create("t", MFD_CLOEXEC), ro = -1, fl = 0;
        void *p;

        g_assert_cmpint(ftruncate(fd, 4096), ==, 0);
        g_assert_cmpint(fdinfo_reopen(fd, FD_KIND_MEMFD, O_RDONLY, &ro), ==, 0);
        g_assert_cmpint(fdinfo_get_flags(ro, &fl), ==, 0);
        g_assert_cmpint(fl & O_ACCMODE, ==, O_RDONLY);
        g_assert_cmpint(fcntl(ro, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
        g_assert_true(p == MAP_FAILED);
        close(ro);
        close(fd);
}

static void test_reopen_keeps_append_and_own_offset(void) {
        g_autofree char *path = NULL;
        int fd, fd2 = -1, fl = 0;

        fd = g_file_open_tmp("fdinfo-XXXXXX", &path, NULL);
        g_assert_cmpint(fd, >=, 0);
        close(fd);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        g_assert_cmpint(write(fd, "abc", 3), ==, 3);
        g_assert_cmpint(fdinfo_reopen(fd, FD_KIND_REGULAR, O_WRONLY, &fd2), ==, 0);
        g_assert_cmpint(fdinfo_get_flags(fd2, &fl), ==, 0);
        g_assert_cmpint(fl & O_APPEND, ==, O_APPEND);
        g_assert_cmpint(lseek(fd2, 0, SEEK_CUR), ==, 0);
        g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 3);
        close(fd2);
        close(fd);
        g_unlink(path);
}

static void test_reopen_refuses_sockets(void) {
        int s[2], fd = -1;
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), ==, 0);
        g_assert_cmpint(fdinfo_reopen(s[0], FD_KIND_SOCKET, O_RDONLY, &fd), ==, -EOPNOTSUPP);
        g_assert_cmpint(fd, ==, -1);
        close(s[0]);
        close(s[1]);
}

static void test_fifo_reopen_does_not_block(void) {
        int p[2], fd = -1, fl = 0;
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(fdinfo_reopen(p[0], FD_KIND_FIFO, O_RDONLY, &fd), ==, 0);
        g_assert_cmpint(fdinfo_get_flags(fd, &fl), ==, 0);
        g_assert_cmpint(fl & O_NONBLOCK, ==, 0); /* as the original */
        close(fd);
        close(p[0]);
        close(p[1]);
}

static void test_seal(void) {
        int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING), nos;
        void *p;

        g_assert_cmpint(ftruncate(fd, 4096), ==, 0);
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        g_assert_true(p != MAP_FAILED);
        g_assert_cmpint(fdinfo_seal(fd), ==, -EBUSY);
        g_assert_false(fdinfo_is_sealed(fd));
        munmap(p, 4096);
        g_assert_cmpint(fdinfo_seal(fd), ==, 0);
        g_assert_true(fdinfo_is_sealed(fd));
        g_assert_cmpint(fcntl(fd, F_GET_SEALS), ==, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        g_assert_cmpint(fdinfo_seal(fd), ==, 0); /* already sealed */
        close(fd);

        nos = memfd_create("t", MFD_CLOEXEC);
        g_assert_cmpint(fdinfo_seal(nos), ==, -EOPNOTSUPP);
        close(nos);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/fdinfo/classify-kinds", test_kinds);
        g_test_add_func("/fdinfo/reopen-narrows-to-read-only", test_reopen_narrows);
        g_test_add_func("/fdinfo/reopen-keeps-append-own-offset", test_reopen_keeps_append_and_own_offset);
        g_test_add_func("/fdinfo/reopen-refuses-sockets", test_reopen_refuses_sockets);
        g_test_add_func("/fdinfo/fifo-reopen-does-not-block", test_fifo_reopen_does_not_block);
        g_test_add_func("/fdinfo/seal", test_seal);
        return g_test_run();
}
