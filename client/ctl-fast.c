/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-fast.c: fdbrokerctl's front, libc only (issue 12).
 *
 * A shell loop of `fdbrokerctl retrieve NAME -- COMMAND` pays for every
 * library the process loads, and loading libsystemd (and its libgcrypt,
 * zstd, lz4, lzma, libcap) was three quarters of the instructions of the
 * sd-bus tool (bench/README.md). glibc cannot load a DT_NEEDED library
 * lazily, so the fast path is this separate program, linked against libc
 * alone:
 *
 *   retrieve NAME [--read-only] [--reopen] [--wait SEC] -- COMMAND [ARG...]
 *
 * over the broker's direct socket (SPEC §5) is one connect, two writes (the
 * authentication, then the call), two reads (recvmsg) and one exec.
 * Everything else -- other verbs, --help, anything it does not recognise,
 * no direct socket, a socket that refuses us before authenticating -- execs
 * the full sd-bus tool (fdbrokerctl.c, installed as
 * $libexecdir/fdbrokerctl-full) with the same argv, so messages, exit codes
 * and behaviour are that tool's. Once the call is sent, nothing falls
 * back (a Retrieve may have had an effect, e.g. a --once entry is gone):
 * failures are reported as the full tool reports them.
 *
 * The reply is hostile input: every length and offset is checked against
 * what was received, its fds arrive O_CLOEXEC and all but the one handed to
 * COMMAND are closed, and anything unexpected is "not understood". Only
 * the native byte order is accepted (the broker runs on this machine and
 * sd-bus sends in its own). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl-common.h"
#include "protocol.h"

/* A Retrieve reply is an fd and a small dictionary; an error a name and a
 * message. Anything bigger is not an answer we asked for. */
#define REPLY_MAX (64u * 1024u)

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ENDIAN 'l'
#else
#define NATIVE_ENDIAN 'B'
#endif

enum {
        MSG_METHOD_CALL = 1,
        MSG_METHOD_RETURN = 2,
        MSG_ERROR = 3,
        FLAG_ALLOW_INTERACTIVE_AUTHORIZATION = 0x4,
        FIELD_PATH = 1,
        FIELD_INTERFACE = 2,
        FIELD_MEMBER = 3,
        FIELD_ERROR_NAME = 4,
        FIELD_REPLY_SERIAL = 5,
        FIELD_SIGNATURE = 8,
        FIELD_UNIX_FDS = 9,
};

/* ---- the full tool ------------------------------------------------------ */

/* Becomes the full tool with our argv. Next to us first (the build tree),
 * then where it is installed. Returns only on failure. */
static int exec_full(char **argv) {
        char self[PATH_MAX], path[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

        if (n > 0) {
                char *slash;

                self[n] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        snprintf(path, sizeof path, "%.*s/fdbrokerctl-full", (int) (slash - self), self);
                        if (access(path, X_OK) >= 0)
                                execv(path, argv);
                }
        }
        execv(FDBROKERCTL_FULL_PATH, argv);
        return fail("cannot run %s: %s", FDBROKERCTL_FULL_PATH, strerror(errno));
}

/* ---- the command line --------------------------------------------------- */

typedef struct {
        const char *name;
        const char *socket; /* --socket */
        const char *address; /* --address */
        bool system, user, read_only, reopen;
        uint64_t wait_usec;
        char **command;
} Args;

/* The full tool's rule (seconds as a decimal number), within the broker's
 * limit on waits. */
static bool parse_seconds(const char *s, uint64_t *ret_usec) {
        return ctl_parse_seconds(s, ret_usec) >= 0 && *ret_usec <= FDB_WAIT_USEC_MAX;
}

/* An option with a value, as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *opt) {
        size_t n = strlen(opt);

        if (strncmp(argv[*i], opt, n) != 0)
                return NULL;
        if (argv[*i][n] == '=')
                return argv[*i] + n + 1;
        if (argv[*i][n] != '\0' || *i + 1 >= argc)
                return NULL;
        return argv[++*i];
}

/* Recognises exactly the retrieve command lines the full tool accepts
 * without a message (verb options after the verb, one NAME, a COMMAND).
 * Anything else is the full tool's to run or to refuse. */
static bool parse_argv(int argc, char **argv, Args *a) {
        bool verb = false;

        for (int i = 1; i < argc; i++) {
                const char *s = argv[i], *v;

                if (strcmp(s, "--") == 0) {
                        if (!verb || !a->name || i + 1 >= argc)
                                return false;
                        a->command = &argv[i + 1];
                        break;
                }
                if (s[0] != '-' || s[1] == '\0') {
                        if (!verb) {
                                if (strcmp(s, "retrieve") != 0)
                                        return false;
                                verb = true;
                        } else if (a->name)
                                return false;
                        else
                                a->name = s;
                        continue;
                }
                if (strcmp(s, "--system") == 0)
                        a->system = true;
                else if (strcmp(s, "--user") == 0)
                        a->user = true;
                else if ((v = option_value(argc, argv, &i, "--address")))
                        a->address = v;
                else if ((v = option_value(argc, argv, &i, "--socket")))
                        a->socket = v;
                else if (verb && strcmp(s, "--read-only") == 0)
                        a->read_only = true;
                else if (verb && strcmp(s, "--reopen") == 0)
                        a->reopen = true;
                else if (verb && (v = option_value(argc, argv, &i, "--wait"))) {
                        if (!parse_seconds(v, &a->wait_usec))
                                return false;
                } else
                        return false;
        }
        return a->command && a->system + a->user + !!a->address <= 1;
}

/* ---- marshalling the call ----------------------------------------------- */

/* An output buffer; every append is bounds-checked and sets .overflow
 * instead of writing past the end. Offsets count from the message start,
 * which is what D-Bus alignment is relative to. */
typedef struct {
        uint8_t *p;
        size_t n, size;
        bool overflow;
} Buf;

static void put(Buf *b, const void *data, size_t n) {
        if (b->overflow || n > b->size - b->n) {
                b->overflow = true;
                return;
        }
        memcpy(b->p + b->n, data, n);
        b->n += n;
}

static void pad(Buf *b, size_t align) {
        static const uint8_t zeros[8];
        put(b, zeros, (align - b->n % align) % align);
}

static void put_u8(Buf *b, uint8_t v) {
        put(b, &v, 1);
}

static void put_u32(Buf *b, uint32_t v) {
        pad(b, 4);
        put(b, &v, 4);
}

static void put_u64(Buf *b, uint64_t v) {
        pad(b, 8);
        put(b, &v, 8);
}

/* 's' and 'o': u32 length, bytes, NUL. */
static void put_string(Buf *b, const char *s) {
        size_t n = strlen(s);
        put_u32(b, (uint32_t) n);
        put(b, s, n + 1);
}

/* 'g': u8 length, bytes, NUL. */
static void put_signature(Buf *b, const char *s) {
        size_t n = strlen(s);
        put_u8(b, (uint8_t) n);
        put(b, s, n + 1);
}

/* A header field: a struct (8-aligned) of its code and a variant. */
static void put_field(Buf *b, uint8_t code, const char *type, const char *value) {
        pad(b, 8);
        put_u8(b, code);
        put_signature(b, type);
        if (type[0] == 'g')
                put_signature(b, value);
        else
                put_string(b, value);
}

/* One {sv} dict entry (8-aligned) with the key and the variant's
 * signature; the caller appends the value. */
static void put_entry(Buf *b, const char *key, const char *type) {
        pad(b, 8);
        put_string(b, key);
        put_signature(b, type);
}

/* Retrieve(name, options) as a whole message with serial 1: the header,
 * its four fields, padding to 8, then the body "sa{sv}". */
static size_t marshal_retrieve(uint8_t *out, size_t size, const Args *a, uint8_t flags) {
        Buf b = { .p = out, .size = size };
        size_t body_start, body_len_at, fields_len_at, fields_start, array_len_at, array_start;
        uint32_t v;

        put_u8(&b, NATIVE_ENDIAN);
        put_u8(&b, MSG_METHOD_CALL);
        put_u8(&b, flags);
        put_u8(&b, 1); /* protocol version */
        body_len_at = b.n;
        put_u32(&b, 0); /* body length, below */
        put_u32(&b, 1); /* serial */
        fields_len_at = b.n;
        put_u32(&b, 0); /* header fields' length, below */
        fields_start = b.n; /* already 8-aligned: 16 */
        put_field(&b, FIELD_PATH, "o", FDB_OBJECT_PATH);
        put_field(&b, FIELD_INTERFACE, "s", FDB_INTERFACE);
        put_field(&b, FIELD_MEMBER, "s", "Retrieve");
        put_field(&b, FIELD_SIGNATURE, "g", "sa{sv}");
        v = (uint32_t) (b.n - fields_start);
        if (!b.overflow)
                memcpy(out + fields_len_at, &v, 4);
        pad(&b, 8);
        body_start = b.n;

        put_string(&b, a->name);
        array_len_at = (put_u32(&b, 0), b.n - 4); /* array length, below */
        pad(&b, 8); /* the first entry's alignment; not part of the length */
        array_start = b.n;
        if (a->read_only) {
                put_entry(&b, "access", "s");
                put_string(&b, "read-only");
        }
        if (a->reopen) {
                put_entry(&b, "reopen", "b");
                put_u32(&b, 1);
        }
        if (a->wait_usec > 0) {
                put_entry(&b, "wait-usec", "t");
                put_u64(&b, a->wait_usec);
        }
        if (b.overflow)
                return 0;
        v = (uint32_t) (b.n - array_start);
        memcpy(out + array_len_at, &v, 4);
        v = (uint32_t) (b.n - body_start);
        memcpy(out + body_len_at, &v, 4);
        return b.n;
}

/* ---- reading the reply -------------------------------------------------- */

/* What was received: the bytes after the authentication lines and every
 * fd that came with any of them (O_CLOEXEC, ours to close). */
typedef struct {
        uint8_t buf[REPLY_MAX + 512];
        size_t n;
        int fds[FDB_FDS_PER_CALL_MAX];
        size_t n_fds;
        bool too_many_fds;
} Input;

static void input_close_fds(Input *in, int keep) {
        for (size_t i = 0; i < in->n_fds; i++)
                if (in->fds[i] != keep)
                        (void) close(in->fds[i]);
        in->n_fds = 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* One recvmsg into the rest of the buffer, waiting until deadline (of
 * CLOCK_MONOTONIC, in µs): a server that drips bytes does not keep us
 * longer than one that says nothing. Returns bytes read, 0 at EOF, or a
 * negative errno. */
static ssize_t input_read(Input *in, int fd, uint64_t deadline) {
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(int) * FDB_FDS_PER_CALL_MAX)];
        } control;
        struct iovec iov = { .iov_base = in->buf + in->n, .iov_len = sizeof in->buf - in->n };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control
        };
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t k;

        if (iov.iov_len == 0)
                return -EMSGSIZE;
        for (;;) {
                uint64_t now = now_usec();
                uint64_t left_ms = now >= deadline ? 0 : (deadline - now + 999) / 1000;

                k = poll(&p, 1, left_ms > INT_MAX ? INT_MAX : (int) left_ms);
                if (k == 0)
                        return -ETIMEDOUT;
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k < 0)
                        continue;
                k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
                if (k >= 0)
                        break;
                if (errno != EINTR && errno != EAGAIN)
                        return -errno;
        }
        /* Fds the control buffer could not hold were closed by the kernel. */
        if (mh.msg_flags & MSG_CTRUNC)
                in->too_many_fds = true;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t n;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int rfd;
                        memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof rfd);
                        if (in->n_fds < FDB_FDS_PER_CALL_MAX)
                                in->fds[in->n_fds++] = rfd;
                        else {
                                (void) close(rfd);
                                in->too_many_fds = true;
                        }
                }
        }
        in->n += (size_t) k;
        return k;
}

static uint32_t get_u32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
}

static size_t align_to(size_t off, size_t a) {
        return (off + a - 1) / a * a;
}

/* A string ('s', 'o') at *off within [0, end): its length fits, it ends
 * with its NUL and holds no other. Advances *off past it. */
static const char *get_string(const uint8_t *m, size_t end, size_t *off) {
        size_t o = align_to(*off, 4), len;

        if (o + 4 > end)
                return NULL;
        len = get_u32(m + o);
        o += 4;
        if (len >= end - o || m[o + len] != '\0' || memchr(m + o, '\0', len))
                return NULL;
        *off = o + len + 1;
        return (const char *) m + o;
}

static const char *get_signature(const uint8_t *m, size_t end, size_t *off) {
        size_t o = *off, len;

        if (o + 1 > end)
                return NULL;
        len = m[o++];
        if (len >= end - o || m[o + len] != '\0' || memchr(m + o, '\0', len))
                return NULL;
        *off = o + len + 1;
        return (const char *) m + o;
}

typedef struct {
        uint8_t type;
        uint32_t reply_serial, n_fds;
        const char *error_name, *signature;
        const uint8_t *body;
        size_t body_len;
        size_t size; /* of the whole message */
} Message;

/* The fixed 16 bytes at the start of m (n bytes received so far): fills
 * msg's type and sizes and *ret_end, the end of the header fields.
 * Returns 1, 0 when more bytes are needed, or -EBADMSG. */
static int parse_fixed_header(const uint8_t *m, size_t n, Message *msg, size_t *ret_end) {
        size_t fields_len, end;

        if (n < 16)
                return 0;
        if (m[0] != NATIVE_ENDIAN || m[3] != 1)
                return -EBADMSG;
        msg->type = m[1];
        msg->body_len = get_u32(m + 4);
        fields_len = get_u32(m + 12);
        if (fields_len > REPLY_MAX || msg->body_len > REPLY_MAX)
                return -EBADMSG;
        end = 16 + fields_len;
        msg->size = align_to(end, 8) + msg->body_len;
        if (msg->size > REPLY_MAX)
                return -EBADMSG;
        if (n < msg->size)
                return 0;
        *ret_end = end;
        return 1;
}

/* The value of header field code, of basic type t, at *off within
 * [0, end): kept in msg when it is a field we need, skipped otherwise.
 * Advances *off past it (possibly beyond end: the caller checks). */
static int read_field_value(const uint8_t *m, size_t end, size_t *off, uint8_t code, char t, Message *msg) {
        const char *s;

        switch (t) {
        case 's':
        case 'o':
                s = get_string(m, end, off);
                if (!s)
                        return -EBADMSG;
                if (code == FIELD_ERROR_NAME)
                        msg->error_name = s;
                return 0;
        case 'g':
                s = get_signature(m, end, off);
                if (!s)
                        return -EBADMSG;
                if (code == FIELD_SIGNATURE)
                        msg->signature = s;
                return 0;
        case 'u':
        case 'i':
        case 'h':
        case 'b':
                *off = align_to(*off, 4);
                if (*off + 4 > end)
                        return -EBADMSG;
                if (code == FIELD_REPLY_SERIAL)
                        msg->reply_serial = get_u32(m + *off);
                else if (code == FIELD_UNIX_FDS)
                        msg->n_fds = get_u32(m + *off);
                *off += 4;
                return 0;
        case 'y':
                *off += 1;
                return 0;
        case 'n':
        case 'q':
                *off = align_to(*off, 2) + 2;
                return 0;
        case 'x':
        case 't':
        case 'd':
                *off = align_to(*off, 8) + 8;
                return 0;
        default:
                return -EBADMSG;
        }
}

/* One header field at *off: its code, its one-letter signature, its value
 * (read_field_value). The well-known fields must have their types. */
static int parse_header_field(const uint8_t *m, size_t end, size_t *off, Message *msg) {
        const char *sig;
        uint8_t code;
        int r;

        *off = align_to(*off, 8);
        if (*off >= end)
                return -EBADMSG;
        code = m[(*off)++];
        sig = get_signature(m, end, off);
        if (!sig || strlen(sig) != 1)
                return -EBADMSG;
        r = read_field_value(m, end, off, code, sig[0], msg);
        if (r < 0)
                return r;
        if (*off > end)
                return -EBADMSG;
        if ((code == FIELD_REPLY_SERIAL || code == FIELD_UNIX_FDS) && sig[0] != 'u')
                return -EBADMSG;
        if (code == FIELD_ERROR_NAME && sig[0] != 's')
                return -EBADMSG;
        if (code == FIELD_SIGNATURE && sig[0] != 'g')
                return -EBADMSG;
        return 0;
}

/* Parses the message at the start of m (n bytes received so far).
 * Returns 1 with *ret filled, 0 when more bytes are needed, -EBADMSG when
 * it is not a message we can read. Header fields we do not need are
 * skipped when their type is basic; a container there is refused. */
static int message_parse(const uint8_t *m, size_t n, Message *ret) {
        Message msg = { .signature = "" };
        size_t end = 0, off;
        int r;

        r = parse_fixed_header(m, n, &msg, &end);
        if (r <= 0)
                return r;
        for (off = 16; off < end;) {
                r = parse_header_field(m, end, &off, &msg);
                if (r < 0)
                        return r;
        }
        msg.body = m + align_to(end, 8);
        *ret = msg;
        return 1;
}

/* ---- the fast path ------------------------------------------------------ */

static int send_all(int fd, const void *data, size_t n) {
        for (size_t done = 0; done < n;) {
                ssize_t k = send(fd, (const uint8_t *) data + done, n - done, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        return 0;
}

/* The outcome of the direct attempt: FALLBACK means nothing reached the
 * broker's object (no socket, refused before authentication) and the full
 * tool takes over; anything else is an exit status already reported. */
#define FALLBACK (-1)

/* An error reply, in the full tool's words (ctl_report_error()). */
static int report_error(const Message *msg, const char *address) {
        const char *text = NULL;
        size_t off = 0;

        if (msg->signature[0] == 's')
                text = get_string(msg->body, msg->body_len, &off);
        return ctl_report_error(msg->error_name, text, CTL_DIRECT_WHAT, address);
}

/* Skips the authentication replies at the start of in: "OK <guid>" then
 * "AGREE_UNIX_FD". Returns the offset of the first message byte, 0 while
 * incomplete, -1 when the server said anything else. */
static ssize_t auth_end(const Input *in) {
        const char *b = (const char *) in->buf;
        const char *e1, *e2;

        e1 = memchr(b, '\n', in->n);
        if (!e1)
                return in->n > 256 ? -1 : 0;
        if (strncmp(b, "OK ", 3) != 0 || e1[-1] != '\r')
                return -1;
        e2 = memchr(e1 + 1, '\n', in->n - (size_t) (e1 + 1 - b));
        if (!e2)
                return in->n - (size_t) (e1 + 1 - b) > 256 ? -1 : 0;
        if ((size_t) (e2 - e1) != strlen("\nAGREE_UNIX_FD\r") || strncmp(e1 + 1, "AGREE_UNIX_FD\r", 14) != 0)
                return -1;
        return e2 + 1 - b;
}

/* Connects to the direct socket at path. Returns the socket, O_CLOEXEC
 * and ours to close, or -1. */
static int connect_direct(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof sa.sun_path)
                return -1;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                (void) close(fd);
                return -1;
        }
        return fd;
}

/* AUTH EXTERNAL with our uid in hex-encoded decimal, fds and BEGIN in one
 * write. The call waits for the server's answers: sd-bus (252) leaves a
 * message that came in the same read as BEGIN unprocessed until the
 * socket is readable again. Returns the length written to auth. */
static size_t format_auth(char *auth, size_t size) {
        char uid[16];
        int len = snprintf(uid, sizeof uid, "%u", (unsigned) geteuid());
        size_t n_auth = (size_t) snprintf(auth, size, "%cAUTH EXTERNAL ", '\0');

        for (int i = 0; i < len; i++)
                n_auth += (size_t) snprintf(auth + n_auth, size - n_auth, "%02x", (unsigned char) uid[i]);
        n_auth += (size_t) snprintf(auth + n_auth, size - n_auth, "\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n");
        return n_auth;
}

/* What one look at the connection decided. */
typedef enum Step {
        STEP_READ, /* the message is incomplete: read more */
        STEP_NEXT, /* look at the input again */
        STEP_FD,   /* our reply: *ret is the index of its fd */
        STEP_DONE, /* finished: *ret is the exit status, or FALLBACK */
} Step;

static int not_understood(int errnum) {
        return fail("the broker's answer to Retrieve is not understood: %s", strerror(errnum));
}

/* Removes a message that is not a reply (a signal) and its fds from in,
 * closing them. msg is at start in in and carries no more fds than in. */
static void drop_message(Input *in, size_t start, const Message *msg) {
        for (size_t i = 0; i < msg->n_fds; i++)
                (void) close(in->fds[i]);
        memmove(in->fds, in->fds + msg->n_fds, (in->n_fds - msg->n_fds) * sizeof(int));
        in->n_fds -= msg->n_fds;
        memmove(in->buf + start, in->buf + start + msg->size, in->n - start - msg->size);
        in->n -= msg->size;
}

/* Our reply (serial 1), carrying n_fds fds: an error is reported; a
 * return must be "ha{sv}" with the index of its one fd. */
static Step look_at_reply(const Message *msg, size_t n_fds, const char *address, int *ret) {
        uint32_t index;

        if (msg->reply_serial != 1 || msg->n_fds != n_fds) {
                *ret = not_understood(EBADMSG);
                return STEP_DONE;
        }
        if (msg->type == MSG_ERROR) {
                *ret = msg->error_name ? report_error(msg, address) : not_understood(EBADMSG);
                return STEP_DONE;
        }
        /* "ha{sv}": the index of the one fd; the dictionary is not ours to
         * read here. */
        if (strcmp(msg->signature, "ha{sv}") != 0 || msg->body_len < 8 || msg->n_fds != 1 ||
            (index = get_u32(msg->body)) >= msg->n_fds) {
                *ret = not_understood(EBADMSG);
                return STEP_DONE;
        }
        *ret = (int) index;
        return STEP_FD;
}

/* Looks at the message at start in in: a signal is dropped, our reply is
 * looked at (look_at_reply). */
static Step look_at_message(Input *in, size_t start, const char *address, int *ret) {
        Message msg;
        int r;

        r = message_parse(in->buf + start, in->n - start, &msg);
        if (r < 0 || in->too_many_fds) {
                *ret = not_understood(in->too_many_fds ? EMFILE : EBADMSG);
                return STEP_DONE;
        }
        if (r == 0)
                return STEP_READ;
        if (msg.type != MSG_METHOD_RETURN && msg.type != MSG_ERROR) {
                if (msg.n_fds > in->n_fds) {
                        *ret = not_understood(EBADMSG);
                        return STEP_DONE;
                }
                drop_message(in, start, &msg);
                return STEP_NEXT;
        }
        return look_at_reply(&msg, in->n_fds, address, ret);
}

/* Reads more of the broker's answer. Until the authentication lines are
 * in (*start 0), any trouble falls back; once they are, the call (out) is
 * sent, and from here on, as the full tool does once connected, no
 * falling back. */
static Step read_answer(Input *in, int fd, uint64_t deadline, ssize_t *start, const uint8_t *out, size_t n_out,
                        const char *address, int *ret) {
        ssize_t k = input_read(in, fd, deadline);

        if (k == -ETIMEDOUT) {
                *ret = fail("the broker did not answer Retrieve in time (on %s at %s).", CTL_DIRECT_WHAT, address);
                return STEP_DONE;
        }
        if (k <= 0 && *start == 0) {
                *ret = FALLBACK; /* closed or refused before it authenticated us */
                return STEP_DONE;
        }
        if (k == -EMSGSIZE) {
                *ret = not_understood(EMSGSIZE);
                return STEP_DONE;
        }
        if (k <= 0) {
                *ret = fail("lost the connection to %s at %s (%s).", CTL_DIRECT_WHAT, address,
                            strerror(k == 0 ? ECONNRESET : (int) -k));
                return STEP_DONE;
        }
        if (*start == 0) {
                *start = auth_end(in);
                if (*start < 0) {
                        *ret = FALLBACK;
                        return STEP_DONE;
                }
                if (*start > 0 && send_all(fd, out, n_out) < 0) {
                        *ret = fail("lost the connection to %s at %s (%s).", CTL_DIRECT_WHAT, address,
                                    strerror(errno));
                        return STEP_DONE;
                }
        }
        return STEP_NEXT;
}

static int retrieve_direct(const Args *a, const char *path) {
        static Input in;
        uint8_t out[1024 + FDB_NAME_MAX * 2];
        char auth[64], address[PATH_MAX + 64];
        size_t n_auth, n_out;
        ssize_t start = 0;
        uint64_t deadline = now_usec() + CALL_TIMEOUT_USEC + a->wait_usec;
        int fd, r;

        if (strlen(a->name) > FDB_NAME_MAX * 2)
                return FALLBACK;
        fd = connect_direct(path);
        if (fd < 0)
                return FALLBACK;

        n_auth = format_auth(auth, sizeof auth);
        /* polkit may ask the user only where there is one to ask. */
        n_out = marshal_retrieve(out, sizeof out, a,
                                 isatty(STDIN_FILENO) > 0 ? FLAG_ALLOW_INTERACTIVE_AUTHORIZATION : 0);
        if (n_out == 0 || send_all(fd, auth, n_auth) < 0) {
                /* Refused before anything was asked: nothing happened. */
                (void) close(fd);
                return FALLBACK;
        }

        ctl_format_address(address, sizeof address, path);
        for (;;) {
                Step s = start > 0 ? look_at_message(&in, (size_t) start, address, &r) : STEP_READ;

                if (s == STEP_NEXT)
                        continue;
                if (s == STEP_DONE)
                        break;
                if (s == STEP_FD) {
                        (void) close(fd);
                        in.n_fds = 0;
                        /* Borrowed: O_CLOEXEC, gone with the exec. */
                        return ctl_exec_with_fd(in.fds[r], a->name, a->command);
                }
                if (read_answer(&in, fd, deadline, &start, out, n_out, address, &r) == STEP_DONE)
                        break;
        }
        input_close_fds(&in, -1);
        (void) close(fd);
        return r;
}

int main(int argc, char *argv[]) {
        Args a = {};
        const char *path;
        int r;

        if (!parse_argv(argc, argv, &a))
                return exec_full(argv);
        path = ctl_socket_path(a.socket, ctl_bus_address(a.address, a.system, a.user), a.user);
        if (!path)
                return exec_full(argv);
        ctl_fill_std_fds();
        r = retrieve_direct(&a, path);
        if (r == FALLBACK)
                return exec_full(argv);
        return r;
}
