/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdb-p2p-server.c: a stand-in for the broker's direct socket (SPEC §5), so
 * that fdbrokerctl's peer-to-peer path is tested before (and apart from) the
 * broker's own server.
 *
 *     fdb-p2p-server SOCKET LOG NAME FILE
 *
 * Listens on SOCKET (mode 0666) and serves each connection as sd-bus does a
 * peer-to-peer one: no bus, no Hello. Prints "ready" on stdout once
 * listening. Every message a client sends is appended to LOG as one line,
 * "TYPE MEMBER" ("call Retrieve"), so a test can assert what went over the
 * wire. It answers:
 *   Retrieve(s, a{sv})     the fd of FILE (opened read-only) under NAME,
 *                          NotFound for anything else
 *   List(a{sv})            NAME only
 *   Deposit(s, h, a{sv})   ok; "p2p/once/..." sends EntryRemoved(name,
 *                          retrieved-once) after the reply; "p2p/replace/..."
 *                          sends EntryRemoved(name, replaced) before the
 *                          reply (about the entry replaced) and
 *                          EntryRemoved(name, removed) after it
 *   Watch(as, a{sv})       ok, then EntryAdded(NAME, info) and
 *                          EntryRemoved("p2p/gone", "expired")
 * SIGTERM ends it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "protocol.h"

static const char *arg_log, *arg_name, *arg_file;
static sd_event *event;

static void log_message(sd_bus_message *m) {
        uint8_t type = 0;
        FILE *f;

        (void) sd_bus_message_get_type(m, &type);
        f = fopen(arg_log, "ae");
        if (!f)
                return;
        fprintf(f, "%s %s\n",
                type == SD_BUS_MESSAGE_METHOD_CALL ? "call"
                : type == SD_BUS_MESSAGE_SIGNAL    ? "signal"
                                                   : "other",
                sd_bus_message_get_member(m) ?: "-");
        fclose(f);
}

static int append_info(sd_bus_message *m, int fd) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        return sd_bus_message_append(m, "a{sv}", 4, "kind", "s", "regular", "size", "t", (uint64_t) st.st_size,
                                     "owner-uid", "u", (uint32_t) getuid(), "lifetime", "s", "persistent");
}

static int method_retrieve(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -1;
        sd_bus_message *reply = NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (strcmp(name, arg_name) != 0)
                return sd_bus_error_setf(error, FDB_ERROR_NAME_NOT_FOUND, "No entry named '%s' that you may retrieve.",
                                         name);
        fd = open(arg_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "h", fd);
        if (r >= 0)
                r = append_info(reply, fd);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r < 0 ? r : 1;
}

static int method_list(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = open(arg_file, O_RDONLY | O_CLOEXEC);
        sd_bus_message *reply = NULL;
        int r;

        if (fd < 0)
                return -errno;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sa{sv})");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", arg_name);
        if (r >= 0)
                r = append_info(reply, fd);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r < 0 ? r : 1;
}

static int emit_removed(sd_bus *bus, const char *name, const char *reason) {
        return sd_bus_emit_signal(bus, FDB_OBJECT_PATH, FDB_INTERFACE, "EntryRemoved", "ss", name, reason);
}

static int method_deposit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        const char *name;
        int fd, r;

        r = sd_bus_message_read(m, "sh", &name, &fd);
        if (r < 0)
                return r;
        if (strncmp(name, "p2p/replace/", 12) == 0) {
                r = emit_removed(bus, name, "replaced");
                if (r < 0)
                        return r;
        }
        r = sd_bus_reply_method_return(m, NULL);
        if (r < 0)
                return r;
        if (strncmp(name, "p2p/once/", 9) == 0 || strncmp(name, "p2p/replace/", 12) == 0) {
                r = emit_removed(bus, name, name[4] == 'o' ? "retrieved-once" : "removed");
                if (r < 0)
                        return r;
        }
        return 1;
}

static int method_watch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        _cleanup_close_ int fd = open(arg_file, O_RDONLY | O_CLOEXEC);
        sd_bus_message *s = NULL;
        int r;

        if (fd < 0)
                return -errno;
        r = sd_bus_reply_method_return(m, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_new_signal(bus, &s, FDB_OBJECT_PATH, FDB_INTERFACE, "EntryAdded");
        if (r >= 0)
                r = sd_bus_message_append(s, "s", arg_name);
        if (r >= 0)
                r = append_info(s, fd);
        if (r >= 0)
                r = sd_bus_send(bus, s, NULL);
        sd_bus_message_unref(s);
        if (r < 0)
                return r;
        r = emit_removed(bus, "p2p/gone", "expired");
        return r < 0 ? r : 1;
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Retrieve", "sa{sv}", "ha{sv}", method_retrieve, 0),
        SD_BUS_METHOD("List", "a{sv}", "a(sa{sv})", method_list, 0),
        SD_BUS_METHOD("Deposit", "sha{sv}", "", method_deposit, 0),
        SD_BUS_METHOD("Watch", "asa{sv}", "", method_watch, 0),
        SD_BUS_SIGNAL("EntryAdded", "sa{sv}", 0),
        SD_BUS_SIGNAL("EntryRemoved", "ss", 0),
        SD_BUS_VTABLE_END,
};

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(m);

        if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected")) {
                (void) sd_bus_detach_event(bus);
                sd_bus_unref(bus); /* sd_bus_process() holds its own reference */
                return 1;
        }
        log_message(m);
        return 0;
}

static int on_connection(sd_event_source *s, int listen_fd, uint32_t revents, void *userdata) {
        sd_bus *bus = NULL;
        sd_id128_t id;
        int fd, r;

        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return 0;
        r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, fd, fd);
        if (r >= 0)
                r = sd_bus_set_server(bus, 1, id);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, 1);
        if (r >= 0)
                r = sd_bus_add_filter(bus, NULL, on_message, NULL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, FDB_OBJECT_PATH, FDB_INTERFACE, vtable, NULL);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, 0);
        if (r < 0) {
                fprintf(stderr, "fdb-p2p-server: cannot serve a connection: %s\n", strerror(-r));
                if (bus)
                        sd_bus_close_unref(bus);
                else
                        close(fd);
        }
        return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(event, 0);
}

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        sigset_t mask;
        int r;

        if (argc != 5 || strlen(argv[1]) >= sizeof sa.sun_path) {
                fprintf(stderr, "usage: fdb-p2p-server SOCKET LOG NAME FILE\n");
                return 2;
        }
        arg_log = argv[2];
        arg_name = argv[3];
        arg_file = argv[4];
        strcpy(sa.sun_path, argv[1]);
        (void) unlink(argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod(argv[1], 0666) < 0 ||
            listen(fd, 16) < 0) {
                perror("fdb-p2p-server: listen");
                return 1;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, on_term, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_term, NULL);
        if (r >= 0)
                r = sd_event_add_io(event, NULL, fd, EPOLLIN, on_connection, NULL);
        if (r < 0) {
                fprintf(stderr, "fdb-p2p-server: %s\n", strerror(-r));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        r = sd_event_loop(event);
        sd_event_unref(event);
        (void) unlink(argv[1]);
        return r < 0 ? 1 : 0;
}
