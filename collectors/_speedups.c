/*
 * netscope's compiled readers: the loops that run once per fd or per socket of the machine, where Python's own
 * per-item cost, not the system call, is most of the time (benchmarks/README.md, "The compiled readers").
 *
 * Optional: pip builds it where a C compiler is present and installs the package without it where not; every
 * function here has a pure-Python twin in collectors/speedups.py that tests/test_speedups.py holds to the same
 * answers on the same real /proc and the same real kernel replies.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

/* What one readlink found. */
enum { LINK_GONE = 0, LINK_SOCKET = 1, LINK_FILE = 2, LINK_DENIED = 3 };

typedef struct {
    int kind;
    unsigned long long inode;
} link_result;

/* "socket:[12345]" -> 12345; anything else (a file, a pipe, an anon inode, a malformed number) -> 0 and -1.
 * Exactly the links Python's int(link[8:-1]) accepts from the kernel, which writes no sign, space or underscore. */
static int socket_inode(const char *link, ssize_t length, unsigned long long *inode) {
    static const char prefix[] = "socket:[";
    const ssize_t prefix_len = sizeof prefix - 1;
    if (length <= prefix_len + 1 || memcmp(link, prefix, prefix_len) != 0 || link[length - 1] != ']')
        return -1;
    unsigned long long value = 0;
    for (ssize_t at = prefix_len; at < length - 1; at++) {
        char c = link[at];
        if (c < '0' || c > '9')
            return -1;
        unsigned digit = (unsigned)(c - '0');
        if (value > (ULLONG_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *inode = value;
    return 0;
}

PyDoc_STRVAR(read_fd_links_doc,
"read_fd_links(dir_fd, names, table) -> (table_sockets, other_sockets, files, denied)\n\n"
"readlink each fd name relative to dir_fd (an open /proc/<pid>/fd): sockets in `table` (a set of inodes, or None)\n"
"and other sockets as dicts of name -> inode, other links' names, and the names we may not read. Names that\n"
"vanished meanwhile are in none of them. The system calls run without the GIL.");

static PyObject *read_fd_links(PyObject *Py_UNUSED(module), PyObject *args) {
    int dir_fd;
    PyObject *names_arg, *table;
    if (!PyArg_ParseTuple(args, "iOO:read_fd_links", &dir_fd, &names_arg, &table))
        return NULL;
    if (table != Py_None && !PyAnySet_Check(table)) {
        PyErr_SetString(PyExc_TypeError, "table must be a set of inodes or None");
        return NULL;
    }
    PyObject *names = PySequence_Fast(names_arg, "names must be iterable");
    if (names == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(names);
    PyObject **items = PySequence_Fast_ITEMS(names);
    const char **paths = PyMem_Calloc(count ? count : 1, sizeof *paths);
    link_result *results = PyMem_Calloc(count ? count : 1, sizeof *results);
    PyObject *in_table = NULL, *other = NULL, *files = NULL, *denied = NULL, *answer = NULL;
    if (paths == NULL || results == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t size;
        const char *path = PyUnicode_AsUTF8AndSize(items[i], &size);
        if (path == NULL)
            goto done;
        paths[i] = (Py_ssize_t)strlen(path) == size ? path : NULL; /* an embedded NUL names no fd */
    }

    Py_BEGIN_ALLOW_THREADS
    char link[256];
    for (Py_ssize_t i = 0; i < count; i++) {
        if (paths[i] == NULL)
            continue;
        ssize_t length = readlinkat(dir_fd, paths[i], link, sizeof link);
        if (length < 0) {
            results[i].kind = (errno == EACCES || errno == EPERM) ? LINK_DENIED : LINK_GONE;
        } else if (length < (ssize_t)sizeof link && socket_inode(link, length, &results[i].inode) == 0) {
            results[i].kind = LINK_SOCKET;
        } else {
            results[i].kind = LINK_FILE; /* a path longer than the buffer is no socket either */
        }
    }
    Py_END_ALLOW_THREADS

    in_table = PyDict_New();
    other = PyDict_New();
    files = PyList_New(0);
    denied = PyList_New(0);
    if (in_table == NULL || other == NULL || files == NULL || denied == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        int failed = 0;
        switch (results[i].kind) {
        case LINK_SOCKET: {
            PyObject *inode = PyLong_FromUnsignedLongLong(results[i].inode);
            if (inode == NULL)
                goto done;
            int found = table == Py_None ? 0 : PySet_Contains(table, inode);
            failed = found < 0 || PyDict_SetItem(found ? in_table : other, items[i], inode) < 0;
            Py_DECREF(inode);
            break;
        }
        case LINK_FILE:
            failed = PyList_Append(files, items[i]) < 0;
            break;
        case LINK_DENIED:
            failed = PyList_Append(denied, items[i]) < 0;
            break;
        }
        if (failed)
            goto done;
    }
    answer = PyTuple_Pack(4, in_table, other, files, denied);
done:
    Py_XDECREF(in_table);
    Py_XDECREF(other);
    Py_XDECREF(files);
    Py_XDECREF(denied);
    PyMem_Free(paths);
    PyMem_Free(results);
    Py_DECREF(names);
    return answer;
}


/* The sock_diag dump's hot loop (collectors/sockdiag.py, _Parser.parse, is its twin and its documentation): one
 * struct nlmsghdr + struct inet_diag_msg (72 bytes) per socket, unpacked at fixed offsets. */
enum {
    NL_HEADER_LEN = 16,
    DIAG_MESSAGE_LEN = 16 + 72,
    TCP_SYN_RECV = 3,
    TCP_LISTEN = 10,
    TCP_NEW_SYN_RECV = 12,
};

static uint32_t u32_at(const unsigned char *at) {
    uint32_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

static uint16_t u16_at(const unsigned char *at) {
    uint16_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

/* The text of an address: from `addresses` (raw bytes -> str, the reader's cache) or made by `make_address`. */
static PyObject *address_text(PyObject *addresses, PyObject *make_address, long family, const unsigned char *raw,
                              Py_ssize_t size) {
    PyObject *key = PyBytes_FromStringAndSize((const char *)raw, size);
    if (key == NULL)
        return NULL;
    PyObject *text = PyDict_GetItemWithError(addresses, key);
    if (text != NULL) {
        Py_INCREF(text);
    } else if (!PyErr_Occurred()) {
        text = PyObject_CallFunction(make_address, "lO", family, key);
    }
    Py_DECREF(key);
    return text;
}

/* Socket (collectors/model.py) made without calling it. Its __init__ costs about 1 us a socket, half of the
 * compiled parse of a first dump (measured: 0.11 of 0.21 s at 100,000 sockets), so this fills the slots in place
 * and makes `key` and `counter_name` as __init__ does; test_speedups holds every slot of both parsers equal. Only
 * where the type's slots are exactly these (by name): otherwise (a field added or renamed) the parse calls the
 * type as before. */
/* The values a socket is made of, in Socket()'s order up to `inode`; its endpoint fields live in `key` alone. */
enum {
    V_PROTO, V_LOCAL_IP, V_LOCAL_PORT, V_REMOTE_IP, V_REMOTE_PORT, V_STATE, V_RECV_Q, V_SEND_Q, V_INODE, V_KEY,
    V_SHARED, SOCKET_VALUES
};
/* Its slots, and the value each holds. */
enum { S_STATE, S_RECV_Q, S_SEND_Q, S_INODE, S_KEY, S_SHARED, SOCKET_SLOTS };
static const char *const socket_slot_names[SOCKET_SLOTS] = {"state", "recv_q", "send_q", "inode", "key", "shared"};
static const int slot_values[SOCKET_SLOTS] = {V_STATE, V_RECV_Q, V_SEND_Q, V_INODE, V_KEY, V_SHARED};
/* Socket.shared: the fields many sockets share, one tuple (model.SharedFields, in this order). */
enum { F_UID, F_USER, F_PID, F_PROGRAM, F_FIRST_SEEN, F_SEEN_SINCE_START, F_CONTAINER, F_PID_START, F_BACKLOG,
       SHARED_FIELDS };

/* Each slot's offset in an instance of `type`; 0 if its slots are not socket_slot_names, in any order (or on an
 * error, cleared). */
static int socket_layout(PyObject *type, Py_ssize_t offsets[SOCKET_SLOTS]) {
    if (!PyType_Check(type) || ((PyTypeObject *)type)->tp_base != &PyBaseObject_Type)
        return 0;
    PyObject *slots = PyObject_GetAttrString(type, "__slots__");
    int ok = slots != NULL && PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == SOCKET_SLOTS;
    for (Py_ssize_t i = 0; ok && i < SOCKET_SLOTS; i++) {
        PyObject *descr = PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, socket_slot_names[i]);
        ok = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
        if (ok)
            offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
    }
    Py_XDECREF(slots);
    PyErr_Clear();
    return ok;
}

/* A Socket of `type` holding `values` (new references, taken whatever happens: the endpoint values are only
 * released, `key` holding them), or NULL with an error set. */
static PyObject *filled_socket(PyObject *type, const Py_ssize_t offsets[SOCKET_SLOTS],
                               PyObject *values[SOCKET_VALUES]) {
    PyObject *sock = NULL;
    int complete = 1;
    for (int i = 0; i < SOCKET_VALUES; i++)
        complete = complete && values[i] != NULL;
    if (complete)
        sock = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0);
    if (sock != NULL)
        for (int i = 0; i < SOCKET_SLOTS; i++) {
            *(PyObject **)((char *)sock + offsets[i]) = values[slot_values[i]];
            values[slot_values[i]] = NULL;
        }
    for (int i = 0; i < SOCKET_VALUES; i++)
        Py_XDECREF(values[i]);
    return sock;
}

/* A Socket made by calling `type` with its positional arguments: the slots up to `inode`, then the shared fields
 * (new references, released here), for a type whose slots socket_layout does not know. NULL with an error set. */
static PyObject *called_socket(PyObject *type, PyObject *values[SOCKET_VALUES]) {
    PyObject *sock = NULL;
    int complete = 1;
    for (int i = 0; i < V_KEY; i++)
        complete = complete && values[i] != NULL;
    complete = complete && values[V_SHARED] != NULL && PyTuple_Check(values[V_SHARED]) &&
               PyTuple_GET_SIZE(values[V_SHARED]) == SHARED_FIELDS;
    if (complete) {
        PyObject *args[V_KEY + SHARED_FIELDS];
        for (int i = 0; i < V_KEY; i++)
            args[i] = values[i];
        for (int i = 0; i < SHARED_FIELDS; i++)
            args[V_KEY + i] = PyTuple_GET_ITEM(values[V_SHARED], i);
        sock = PyObject_Vectorcall(type, args, V_KEY + SHARED_FIELDS, NULL);
    }
    for (int i = 0; i < SOCKET_VALUES; i++)
        Py_XDECREF(values[i]);
    return sock;
}

/* The shared fields of a socket just read, with no owner yet: one tuple per uid (and one per uid for sockets with
 * no inode, whose user is "") in `cache`, the read's; a listener's backlog makes its own. New reference. */
static PyObject *read_shared(PyObject *cache, PyObject *users, uint32_t uid, int has_inode, uint32_t backlog,
                             PyObject *first_seen, PyObject *empty, PyObject *zero_float, PyObject *zero_int) {
    PyObject *cache_key = backlog ? NULL : PyLong_FromLongLong(has_inode ? (long long)uid : -1 - (long long)uid);
    if (cache_key != NULL) {
        PyObject *found = PyDict_GetItemWithError(cache, cache_key);
        if (found != NULL || PyErr_Occurred()) {
            Py_DECREF(cache_key);
            return found ? Py_NewRef(found) : NULL;
        }
    } else if (!backlog) {
        return NULL;
    }
    PyObject *uid_obj = PyLong_FromUnsignedLong(uid);
    PyObject *user = uid_obj == NULL ? NULL : has_inode ? PyObject_GetItem(users, uid_obj) : Py_NewRef(empty);
    PyObject *backlog_obj = backlog ? PyLong_FromUnsignedLong(backlog) : Py_NewRef(zero_int);
    PyObject *shared = NULL;
    if (user != NULL && backlog_obj != NULL)
        shared = PyTuple_Pack(SHARED_FIELDS, uid_obj, user, Py_None, empty, first_seen, Py_False, empty, zero_float,
                              backlog_obj);
    Py_XDECREF(uid_obj);
    Py_XDECREF(user);
    Py_XDECREF(backlog_obj);
    if (shared != NULL && cache_key != NULL && PyDict_SetItem(cache, cache_key, shared) < 0)
        Py_CLEAR(shared);
    Py_XDECREF(cache_key);
    return shared;
}

/* Whether `number` is an int equal to `value`. */
static int number_is(PyObject *number, unsigned long long value) {
    if (number == NULL || !PyLong_Check(number))
        return 0;
    unsigned long long held = PyLong_AsUnsignedLongLong(number);
    if (held == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return held == value;
}

/* Whether `sock`, a Socket of the last read with this message's cookie, is what the message says in everything the
 * reader fills in (its owner is the collector's, set after): then it is reused. A type whose slots this module does
 * not know is never reused (made anew each read, as a read without reuse does). -1 with an error set. */
/* Whether `held` is `value`, or equal to it. -1 with an error set. */
static int same_value(PyObject *held, PyObject *value) {
    return held == value ? 1 : PyObject_RichCompareBool(held, value, Py_EQ);
}

/* Whether `text`, a Socket's address as its parse wrote it (inet_ntop), is the address `raw`. inet_pton of the text
 * rather than a look-up of the raw bytes in the parse's address table: every reused socket asks this, and with more
 * distinct addresses than that table holds (a public server's clients), look-ups would empty it over and over. */
static int address_is(PyObject *text, long family, const unsigned char *raw, Py_ssize_t size) {
    unsigned char parsed[16];
    const char *chars = PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : NULL;
    if (chars == NULL) {
        PyErr_Clear();
        return 0;
    }
    return inet_pton((int)family, chars, parsed) == 1 && memcmp(parsed, raw, (size_t)size) == 0;
}

/* Whether a Socket's endpoints (its key: proto, local ip, local port, remote ip, remote port, ...) are the message's
 * `id` (inet_diag_sockid: sport, dport, src, dst). The cookie does not say: connect() again moves a UDP socket to
 * another peer under the same cookie and state. -1 with an error set. */
static int endpoints_are(PyObject *key, const unsigned char *id, long family, Py_ssize_t address_size,
                         PyObject *ports) {
    if (key == NULL || !PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 6)
        return 0;
    int same = same_value(PyTuple_GET_ITEM(key, 2), PyTuple_GET_ITEM(ports, u16_at(id)));
    if (same > 0)
        same = same_value(PyTuple_GET_ITEM(key, 4), PyTuple_GET_ITEM(ports, u16_at(id + 2)));
    return same > 0 ? address_is(PyTuple_GET_ITEM(key, 1), family, id + 4, address_size) &&
                          address_is(PyTuple_GET_ITEM(key, 3), family, id + 20, address_size)
                    : same;
}

static int reads_the_same(PyObject *sock, PyObject *socket_type, const Py_ssize_t offsets[SOCKET_SLOTS], int filled,
                          PyObject *state_name, uint32_t recv_q, uint32_t send_q, uint32_t backlog, uint32_t uid,
                          uint32_t inode) {
    if (!filled || (PyObject *)Py_TYPE(sock) != socket_type)
        return 0;
    PyObject *state = *(PyObject **)((char *)sock + offsets[S_STATE]);
    PyObject *shared = *(PyObject **)((char *)sock + offsets[S_SHARED]);
    if (state == NULL || shared == NULL || !PyTuple_Check(shared) || PyTuple_GET_SIZE(shared) != SHARED_FIELDS)
        return 0;
    if (state != state_name) {
        int equal = PyObject_RichCompareBool(state, state_name, Py_EQ);
        if (equal <= 0)
            return equal;
    }
    return number_is(*(PyObject **)((char *)sock + offsets[S_RECV_Q]), recv_q) &&
           number_is(*(PyObject **)((char *)sock + offsets[S_SEND_Q]), send_q) &&
           number_is(*(PyObject **)((char *)sock + offsets[S_INODE]), inode) &&
           number_is(PyTuple_GET_ITEM(shared, F_UID), uid) && number_is(PyTuple_GET_ITEM(shared, F_BACKLOG), backlog);
}

/* A read's sockets by their kernel cookie (sockdiag.py's identities), for the next read to reuse: an open-addressing
 * table of (cookie, socket) pairs, 16 bytes a slot and at most half full. A dict keyed by int cost about 84 bytes a
 * socket (the cookie's int object 32, the dict's entry and index about 52): 8 MB at 100,000 sockets, against 4 here.
 * Filled once a read, never emptied (the next read makes a new one), so it has no deletion. Not tracked by the cycle
 * collector: it holds sockets, and nothing a socket holds leads back to it. */
typedef struct {
    uint64_t cookie;
    PyObject *sock; /* NULL: an empty slot */
} identity_slot;

typedef struct {
    PyObject_HEAD
    Py_ssize_t used;
    size_t mask; /* slots - 1, slots a power of two */
    identity_slot *slots;
} IdentitiesObject;

static PyTypeObject IdentitiesType;

static size_t identity_hash(uint64_t cookie) {
    uint64_t mixed = cookie * 0x9E3779B97F4A7C15ULL; /* cookies count up: spread them over the table */
    return (size_t)(mixed ^ (mixed >> 32));
}

/* The slot holding `cookie`, or the empty one where it would go. */
static identity_slot *identities_slot(IdentitiesObject *table, uint64_t cookie) {
    size_t at = identity_hash(cookie) & table->mask;
    while (table->slots[at].sock != NULL && table->slots[at].cookie != cookie)
        at = (at + 1) & table->mask;
    return &table->slots[at];
}

static PyObject *identities_get(IdentitiesObject *table, uint64_t cookie) { /* borrowed; NULL: not there */
    return identities_slot(table, cookie)->sock;
}

static int identities_grow(IdentitiesObject *table) {
    size_t old_size = table->mask + 1, size = old_size * 2;
    identity_slot *old = table->slots, *slots = PyMem_Calloc(size, sizeof *slots);
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    table->slots = slots;
    table->mask = size - 1;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].sock != NULL)
            *identities_slot(table, old[i].cookie) = old[i];
    PyMem_Free(old);
    return 0;
}

/* Hold `sock` under `cookie` (in place of what was there). -1 with an error set. */
static int identities_put(IdentitiesObject *table, uint64_t cookie, PyObject *sock) {
    if ((size_t)(table->used + 1) * 2 > table->mask + 1 && identities_grow(table) < 0)
        return -1;
    identity_slot *slot = identities_slot(table, cookie);
    if (slot->sock == NULL) {
        slot->cookie = cookie;
        table->used++;
    }
    Py_XSETREF(slot->sock, Py_NewRef(sock));
    return 0;
}

static PyObject *identities_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"expected", NULL};
    Py_ssize_t expected = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:Identities", keywords, &expected))
        return NULL;
    size_t size = 16;
    while (expected > 0 && size < (size_t)expected * 2 + 2 && size < ((size_t)1 << 40))
        size *= 2; /* room for `expected` without growing */
    IdentitiesObject *self = (IdentitiesObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->slots = PyMem_Calloc(size, sizeof *self->slots);
    if (self->slots == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->mask = size - 1;
    return (PyObject *)self;
}

static void identities_dealloc(IdentitiesObject *self) {
    if (self->slots != NULL) {
        for (size_t i = 0; i <= self->mask; i++)
            Py_XDECREF(self->slots[i].sock);
        PyMem_Free(self->slots);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t identities_length(IdentitiesObject *self) { return self->used; }

static int cookie_of(PyObject *key, uint64_t *cookie) {
    unsigned long long value = PyLong_AsUnsignedLongLong(key);
    if (value == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *cookie = value;
    return 0;
}

static PyObject *identities_subscript(IdentitiesObject *self, PyObject *key) {
    uint64_t cookie;
    if (cookie_of(key, &cookie) < 0)
        return NULL;
    PyObject *sock = identities_get(self, cookie);
    if (sock == NULL)
        PyErr_SetObject(PyExc_KeyError, key);
    return Py_XNewRef(sock);
}

static int identities_ass_subscript(IdentitiesObject *self, PyObject *key, PyObject *sock) {
    uint64_t cookie;
    if (sock == NULL) {
        PyErr_SetString(PyExc_TypeError, "Identities: no deletion (a read fills a new one)");
        return -1;
    }
    return cookie_of(key, &cookie) < 0 ? -1 : identities_put(self, cookie, sock);
}

static PyObject *identities_get_method(IdentitiesObject *self, PyObject *key) {
    uint64_t cookie;
    if (cookie_of(key, &cookie) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError) && !PyErr_ExceptionMatches(PyExc_TypeError))
            return NULL;
        PyErr_Clear(); /* no cookie is negative, or not an int: not there */
        Py_RETURN_NONE;
    }
    PyObject *sock = identities_get(self, cookie);
    return Py_NewRef(sock != NULL ? sock : Py_None);
}

static PyObject *identities_values(IdentitiesObject *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *values = PyList_New(0);
    for (size_t i = 0; values != NULL && i <= self->mask; i++)
        if (self->slots[i].sock != NULL && PyList_Append(values, self->slots[i].sock) < 0)
            Py_CLEAR(values);
    return values;
}

static PyMethodDef identities_methods[] = {
    {"get", (PyCFunction)identities_get_method, METH_O, "get(cookie) -> the socket read under it, or None"},
    {"values", (PyCFunction)identities_values, METH_NOARGS, "values() -> a list of every socket held"},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods identities_mapping = {
    .mp_length = (lenfunc)identities_length,
    .mp_subscript = (binaryfunc)identities_subscript,
    .mp_ass_subscript = (objobjargproc)identities_ass_subscript,
};

static PyTypeObject IdentitiesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "netscope.collectors._speedups.Identities",
    .tp_basicsize = sizeof(IdentitiesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Identities(expected=0): a read's sockets by kernel cookie (an int of 64 bits), for the next read.",
    .tp_new = identities_new,
    .tp_dealloc = (destructor)identities_dealloc,
    .tp_as_mapping = &identities_mapping,
    .tp_methods = identities_methods,
};

PyDoc_STRVAR(identities_gone_doc,
"identities_gone(previous, seen) -> list\n\n"
"The sockets of `previous` whose cookie is not in `seen` (both Identities): sockdiag._gone's twin.");

static PyObject *identities_gone(PyObject *Py_UNUSED(module), PyObject *args) {
    IdentitiesObject *previous, *seen;
    if (!PyArg_ParseTuple(args, "O!O!:identities_gone", &IdentitiesType, &previous, &IdentitiesType, &seen))
        return NULL;
    PyObject *gone = PyList_New(0);
    for (size_t i = 0; gone != NULL && i <= previous->mask; i++) {
        identity_slot *slot = &previous->slots[i];
        if (slot->sock != NULL && identities_get(seen, slot->cookie) == NULL && PyList_Append(gone, slot->sock) < 0)
            Py_CLEAR(gone);
    }
    return gone;
}

PyDoc_STRVAR(parse_inet_diag_doc,
"parse_inet_diag(buf, size, offset, seq, msg_type, family, proto4, proto6, is_tcp, state_names, ports, addresses,\n"
"                make_address, users, first_seen, socket_type, previous, seen, fresh, out, half_open,\n"
"                shared_by_uid, replaced) -> offset\n\n"
"Make a Socket of each reply message of a dump from buf[offset:size], as collectors/sockdiag.py's _Parser.parse\n"
"does, until the end or the first message that is not a whole inet_diag_msg of this dump (DONE, an error, a late\n"
"reply, a truncated one): returns where that one starts, for the Python loop to take it from there. `family` 0:\n"
"a dump of both families (each message says its own), whose sockets are named proto4 or proto6. `ports`: the\n"
"port of each of the 65,536 raw (host-order read) values, shared by every socket instead of an int each.\n"
"`shared_by_uid`: the read's Socket.shared tuples by uid (see read_shared), filled as they are made.\n"
"`previous` and `seen`: the last read's and this one's sockets by cookie (Identities); a socket of `previous`\n"
"whose message now says otherwise goes to `replaced`.");

static PyObject *parse_inet_diag(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer view;
    Py_ssize_t size, offset;
    unsigned long seq, msg_type;
    long family;
    int is_tcp;
    double first_seen;
    PyObject *proto4, *proto6, *names, *ports, *addresses, *make_address, *users, *socket_type, *previous, *seen,
        *fresh, *out, *half_open, *shared_by_uid, *replaced;
    if (!PyArg_ParseTuple(args, "y*nnkklUUpO!O!O!OOdOOOOO!O!O!O:parse_inet_diag", &view, &size, &offset, &seq,
                          &msg_type, &family, &proto4, &proto6, &is_tcp, &PyTuple_Type, &names, &PyTuple_Type,
                          &ports, &PyDict_Type, &addresses, &make_address, &users,
                          &first_seen, &socket_type, &previous, &seen, &fresh, &PyList_Type, &out, &PyList_Type,
                          &half_open, &PyDict_Type, &shared_by_uid, &replaced))
        return NULL;
    PyObject *result = NULL, *first_seen_obj = NULL, *empty = NULL, *zero_float = NULL, *zero_int = NULL;
    int reusing = previous != Py_None;
    if (size > view.len || offset < 0 || PyTuple_GET_SIZE(names) != 256 || PyTuple_GET_SIZE(ports) != 65536 ||
        (reusing && (!Py_IS_TYPE(previous, &IdentitiesType) || !Py_IS_TYPE(seen, &IdentitiesType) ||
                     !PyList_Check(fresh) || !PyList_Check(replaced)))) {
        PyErr_SetString(PyExc_ValueError, "parse_inet_diag: bad arguments");
        goto done;
    }
    first_seen_obj = PyFloat_FromDouble(first_seen);
    empty = PyUnicode_FromString("");
    zero_float = PyFloat_FromDouble(0.0);
    zero_int = PyLong_FromLong(0);
    if (first_seen_obj == NULL || empty == NULL || zero_float == NULL || zero_int == NULL)
        goto done;
    Py_ssize_t offsets[SOCKET_SLOTS];
    const int filled = socket_layout(socket_type, offsets);
    const unsigned char *buf = view.buf;
    while (offset + DIAG_MESSAGE_LEN <= size) {
        const unsigned char *message = buf + offset;
        uint32_t length = u32_at(message);
        const long message_family = message[16];
        if (length < DIAG_MESSAGE_LEN || (Py_ssize_t)length > size - offset || u16_at(message + 4) != msg_type ||
            u32_at(message + 8) != seq ||
            (family ? message_family != family : message_family != AF_INET && message_family != AF_INET6))
            break; /* the Python loop takes it from here */
        const Py_ssize_t address_size = message_family == AF_INET ? 4 : 16;
        PyObject *proto = message_family == AF_INET ? proto4 : proto6;
        const unsigned char *diag = message + NL_HEADER_LEN;
        unsigned state = diag[1];
        uint64_t cookie;
        memcpy(&cookie, diag + 44, sizeof cookie);
        uint32_t recv_q = u32_at(diag + 56), send_q = u32_at(diag + 60), uid = u32_at(diag + 64),
                 inode = u32_at(diag + 68);
        PyObject *found = NULL;
        /* A listener's Send-Q is its backlog limit; netstat says 0 (see sockdiag.py) */
        const int listening = state == TCP_LISTEN && is_tcp;
        if (reusing) {
            /* By cookie, which the kernel gives each socket once */
            found = identities_get((IdentitiesObject *)previous, cookie);
            int same = found == NULL ? 0
                                     : reads_the_same(found, socket_type, offsets, filled, PyTuple_GET_ITEM(names, state),
                                                      recv_q, listening ? 0 : send_q, listening ? send_q : 0, uid,
                                                      inode);
            if (same > 0)
                same = endpoints_are(*(PyObject **)((char *)found + offsets[S_KEY]), diag + 4, message_family,
                                     address_size, ports);
            if (same > 0) {
                Py_INCREF(found);
            } else {
                if (same < 0 || (found != NULL && PyList_Append(replaced, found) < 0))
                    goto done;
                found = NULL;
            }
        }
        if (found == NULL) {
            PyObject *local = address_text(addresses, make_address, message_family, diag + 8, address_size);
            PyObject *remote =
                local ? address_text(addresses, make_address, message_family, diag + 24, address_size) : NULL;
            PyObject *shared = remote == NULL ? NULL
                                              : read_shared(shared_by_uid, users, uid, inode != 0,
                                                            listening ? send_q : 0, first_seen_obj, empty,
                                                            zero_float, zero_int);
            if (shared != NULL) {
                PyObject *values[SOCKET_VALUES] = {
                    Py_NewRef(proto), Py_NewRef(local), Py_NewRef(PyTuple_GET_ITEM(ports, u16_at(diag + 4))),
                    Py_NewRef(remote), Py_NewRef(PyTuple_GET_ITEM(ports, u16_at(diag + 6))),
                    Py_NewRef(PyTuple_GET_ITEM(names, state)), PyLong_FromUnsignedLong(recv_q),
                    PyLong_FromUnsignedLong(listening ? 0 : send_q), PyLong_FromUnsignedLong(inode), NULL,
                    shared,
                };
                if (!filled) {
                    found = called_socket(socket_type, values);
                } else {
                    /* the identity across reads: a connected socket's leaves the inode out (model.SocketKey) */
                    if (values[V_INODE] != NULL)
                        values[V_KEY] = PyTuple_Pack(6, proto, local, values[V_LOCAL_PORT], remote,
                                                     values[V_REMOTE_PORT],
                                                     u16_at(diag + 6) == 0 ? values[V_INODE] : zero_int);
                    found = filled_socket(socket_type, offsets, values);
                }
            }
            Py_XDECREF(local);
            Py_XDECREF(remote);
            if (found != NULL && reusing && PyList_Append(fresh, found) < 0)
                Py_CLEAR(found);
            if (found == NULL)
                goto done;
        }
        int failed = (reusing && identities_put((IdentitiesObject *)seen, cookie, found) < 0) ||
                     PyList_Append(out, found) < 0 ||
                     (state == TCP_SYN_RECV && !inode && is_tcp && PyList_Append(half_open, found) < 0);
        Py_DECREF(found);
        if (failed)
            goto done;
        offset += (length + 3) & ~3u;
    }
    result = PyLong_FromSsize_t(offset);
done:
    Py_XDECREF(first_seen_obj);
    Py_XDECREF(empty);
    Py_XDECREF(zero_float);
    Py_XDECREF(zero_int);
    PyBuffer_Release(&view);
    return result;
}

/* Interned attribute names of a Socket (collectors/model.py), made once. */
static PyObject *attr_inode, *attr_pid, *attr_program, *attr_container, *attr_pid_start, *attr_key;

PyDoc_STRVAR(attach_owners_doc,
"attach_owners(sockets, pid_of, owner_of, no_owner, fresh, replace) -> dict of key -> socket, or None\n\n"
"Give each socket its owner, as collectors/connections.py's _attach_owners_python does (its twin and its\n"
"documentation): in place where `fresh` is None or holds its id(), else through replace(sock, owner) into the\n"
"list. The sockets by key, or None if two share a key (the caller sorts that out).");

static int owner_differs(PyObject *sock, PyObject *owner) {
    PyObject *names[4] = {attr_pid, attr_program, attr_container, attr_pid_start};
    for (int i = 0; i < 4; i++) {
        PyObject *value = PyObject_GetAttr(sock, names[i]);
        if (value == NULL)
            return -1;
        int same = PyObject_RichCompareBool(value, PyTuple_GET_ITEM(owner, i), Py_EQ);
        Py_DECREF(value);
        if (same <= 0)
            return same < 0 ? -1 : 1;
    }
    return 0;
}

/* A slot of a Socket laid out as socket_layout found (borrowed; NULL if unset). */
static PyObject *socket_slot(PyObject *sock, const Py_ssize_t offsets[SOCKET_SLOTS], int slot) {
    return *(PyObject **)((char *)sock + offsets[slot]);
}

/* Where an owner's four fields (collectors/connections.py's Owner) sit in Socket.shared. */
static const int owner_fields[4] = {F_PID, F_PROGRAM, F_CONTAINER, F_PID_START};

/* owner_differs, reading the shared tuple in place: attach_owners asks it of every socket every refresh, and
 * attribute lookups were a third of the call (62 -> 41 ms at 100,000 sockets, measured). 0 for a shared tuple
 * that is not one (the generic way then raises or tells). */
static int owner_differs_in_shared(PyObject *shared, PyObject *owner) {
    for (int i = 0; i < 4; i++) {
        PyObject *value = PyTuple_GET_ITEM(shared, owner_fields[i]);
        PyObject *wanted = PyTuple_GET_ITEM(owner, i);
        if (value == wanted)
            continue;
        int same = PyObject_RichCompareBool(value, wanted, Py_EQ);
        if (same <= 0)
            return same < 0 ? -1 : 1;
    }
    return 0;
}

/* `shared` with `owner`'s fields: one tuple for every socket that had the same `shared` and gets the same owner,
 * found in `made` (the call's) by the two objects' addresses, which stay put while the call runs (the sockets and
 * `owner_of` hold them). A match is checked field by field, so that two pairs of addresses that mix to the same
 * number cannot share one. New reference. */
static PyObject *shared_with_owner(PyObject *made, PyObject *shared, PyObject *owner) {
    PyObject *items[SHARED_FIELDS];
    for (int i = 0; i < SHARED_FIELDS; i++)
        items[i] = PyTuple_GET_ITEM(shared, i);
    for (int i = 0; i < 4; i++)
        items[owner_fields[i]] = PyTuple_GET_ITEM(owner, i);
    const unsigned long long mixed = (unsigned long long)(uintptr_t)shared * 1000003ULL ^ (uintptr_t)owner;
    PyObject *cache_key = PyLong_FromUnsignedLongLong(mixed);
    if (cache_key == NULL)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(made, cache_key);
    if (found != NULL) {
        int same = 1;
        for (int i = 0; same && i < SHARED_FIELDS; i++)
            same = PyTuple_GET_ITEM(found, i) == items[i];
        if (same) {
            Py_DECREF(cache_key);
            return Py_NewRef(found);
        }
    } else if (PyErr_Occurred()) {
        Py_DECREF(cache_key);
        return NULL;
    }
    PyObject *made_one = PyTuple_New(SHARED_FIELDS);
    if (made_one != NULL) {
        for (int i = 0; i < SHARED_FIELDS; i++)
            PyTuple_SET_ITEM(made_one, i, Py_NewRef(items[i]));
        if (found == NULL && PyDict_SetItem(made, cache_key, made_one) < 0)
            Py_CLEAR(made_one);
    }
    Py_DECREF(cache_key);
    return made_one;
}

static PyObject *attach_owners(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *sockets, *pid_of, *owner_of, *no_owner, *fresh, *replace;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OO:attach_owners", &PyList_Type, &sockets, &PyDict_Type, &pid_of,
                          &PyDict_Type, &owner_of, &PyTuple_Type, &no_owner, &fresh, &replace))
        return NULL;
    if (PyTuple_GET_SIZE(no_owner) != 4 || (fresh != Py_None && !PyAnySet_Check(fresh))) {
        PyErr_SetString(PyExc_ValueError, "attach_owners: bad arguments");
        return NULL;
    }
    /* Sized for every socket at once: growing it to 500,000 keys rehashed it 16 times (a sixth of the call). */
    PyObject *by_key = _PyDict_NewPresized(PyList_GET_SIZE(sockets));
    PyObject *made = PyDict_New(); /* the shared tuples made by this call (shared_with_owner) */
    if (by_key == NULL || made == NULL) {
        Py_XDECREF(by_key);
        Py_XDECREF(made);
        return NULL;
    }
    /* The sockets' type, where its slots can be read in place; any other object goes the generic way. */
    PyTypeObject *laid_out = NULL;
    Py_ssize_t offsets[SOCKET_SLOTS];
    if (PyList_GET_SIZE(sockets) > 0 && socket_layout((PyObject *)Py_TYPE(PyList_GET_ITEM(sockets, 0)), offsets))
        laid_out = Py_TYPE(PyList_GET_ITEM(sockets, 0));
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sockets); i++) {
        PyObject *sock = PyList_GET_ITEM(sockets, i); /* borrowed; the list is not resized here */
        PyObject *shared = Py_TYPE(sock) == laid_out ? socket_slot(sock, offsets, S_SHARED) : NULL;
        const int in_slots = shared != NULL && PyTuple_CheckExact(shared) &&
                             PyTuple_GET_SIZE(shared) == SHARED_FIELDS &&
                             socket_slot(sock, offsets, S_INODE) != NULL && socket_slot(sock, offsets, S_KEY) != NULL;
        PyObject *inode =
            in_slots ? Py_NewRef(socket_slot(sock, offsets, S_INODE)) : PyObject_GetAttr(sock, attr_inode);
        if (inode == NULL)
            goto fail;
        PyObject *pid = PyDict_GetItemWithError(pid_of, inode);
        Py_DECREF(inode);
        PyObject *owner = no_owner;
        if (pid != NULL) {
            owner = PyDict_GetItemWithError(owner_of, pid);
            if (owner == NULL)
                owner = no_owner;
            else if (!PyTuple_Check(owner) || PyTuple_GET_SIZE(owner) != 4) {
                PyErr_SetString(PyExc_ValueError, "attach_owners: an owner is not a 4-tuple");
                goto fail;
            }
        }
        if (PyErr_Occurred())
            goto fail;
        int differs = in_slots ? owner_differs_in_shared(shared, owner) : owner_differs(sock, owner);
        if (differs < 0)
            goto fail;
        if (differs) {
            int in_place = 1;
            if (fresh != Py_None) {
                PyObject *id = PyLong_FromVoidPtr(sock);
                in_place = id ? PySet_Contains(fresh, id) : -1;
                Py_XDECREF(id);
                if (in_place < 0)
                    goto fail;
            }
            if (in_place && in_slots) {
                PyObject *with_owner = shared_with_owner(made, shared, owner);
                if (with_owner == NULL)
                    goto fail;
                PyObject **at = (PyObject **)((char *)sock + offsets[S_SHARED]);
                Py_SETREF(*at, with_owner);
            } else if (in_place) {
                PyObject *names[4] = {attr_pid, attr_program, attr_container, attr_pid_start};
                for (int field = 0; field < 4; field++)
                    if (PyObject_SetAttr(sock, names[field], PyTuple_GET_ITEM(owner, field)) < 0)
                        goto fail;
            } else {
                PyObject *copy = PyObject_CallFunctionObjArgs(replace, sock, owner, NULL);
                if (copy == NULL)
                    goto fail;
                PyList_SetItem(sockets, i, copy); /* steals copy, releases the old one (the old snapshot has it) */
                sock = copy;
            }
        }
        PyObject *key = Py_TYPE(sock) == laid_out && socket_slot(sock, offsets, S_KEY) != NULL
                            ? Py_NewRef(socket_slot(sock, offsets, S_KEY))
                            : PyObject_GetAttr(sock, attr_key);
        if (key == NULL)
            goto fail;
        int failed = PyDict_SetItem(by_key, key, sock) < 0;
        Py_DECREF(key);
        if (failed)
            goto fail;
    }
    Py_DECREF(made);
    if (PyDict_GET_SIZE(by_key) != PyList_GET_SIZE(sockets)) {
        Py_DECREF(by_key);
        Py_RETURN_NONE;
    }
    return by_key;
fail:
    Py_DECREF(by_key);
    Py_DECREF(made);
    return NULL;
}

PyDoc_STRVAR(diff_keys_doc,
"diff_keys(old, new) -> (added, pairs, removed)\n\n"
"Between two dicts of key -> socket: the sockets only in `new`, a flat list [socket, before, socket, before ...]\n"
"of those in both that are not the same object, and the sockets only in `old`: collectors/diff.py's first pass,\n"
"whose Python loop is its twin.");

static PyObject *diff_keys(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *old, *new;
    if (!PyArg_ParseTuple(args, "O!O!:diff_keys", &PyDict_Type, &old, &PyDict_Type, &new))
        return NULL;
    PyObject *added = PyList_New(0), *pairs = PyList_New(0), *removed = PyList_New(0);
    if (added == NULL || pairs == NULL || removed == NULL)
        goto fail;
    Py_ssize_t at = 0;
    PyObject *key, *sock;
    while (PyDict_Next(new, &at, &key, &sock)) {
        PyObject *before = PyDict_GetItemWithError(old, key);
        if (before == NULL) {
            if (PyErr_Occurred() || PyList_Append(added, sock) < 0)
                goto fail;
        } else if (before != sock && (PyList_Append(pairs, sock) < 0 || PyList_Append(pairs, before) < 0)) {
            goto fail;
        }
    }
    at = 0;
    while (PyDict_Next(old, &at, &key, &sock)) {
        int found = PyDict_Contains(new, key);
        if (found < 0 || (!found && PyList_Append(removed, sock) < 0))
            goto fail;
    }
    PyObject *result = PyTuple_Pack(3, added, pairs, removed);
    Py_DECREF(added);
    Py_DECREF(pairs);
    Py_DECREF(removed);
    return result;
fail:
    Py_XDECREF(added);
    Py_XDECREF(pairs);
    Py_XDECREF(removed);
    return NULL;
}

PyDoc_STRVAR(fills_in_place_doc,
"fills_in_place(socket_type) -> bool\n\n"
"Whether parse_inet_diag fills the slots of `socket_type` in place (twice as fast as calling it), as it does for\n"
"collectors/model.py's Socket while its slots are the ones this module knows.");

static PyObject *fills_in_place(PyObject *Py_UNUSED(module), PyObject *type) {
    Py_ssize_t offsets[SOCKET_SLOTS];
    return PyBool_FromLong(socket_layout(type, offsets));
}

/* TupleField: an attribute that is one item of a tuple held in a slot of the same object, read (and, where
 * writable, set: a new tuple with that item replaced) as fast as the slot itself. A Socket's endpoint fields are
 * the items of its key, and its owner fields the items of `shared` (collectors/model.py): kept once, not twice, at
 * 40 bytes a socket in each process; a property in Python costs a function call per read (its twin there). */
typedef struct {
    PyObject_HEAD
    PyTypeObject *owner; /* the class whose instances hold the slot */
    Py_ssize_t offset;   /* of the slot holding the tuple */
    Py_ssize_t index;
    int writable;
    PyObject *name; /* the slot's name, for messages */
} TupleField;

static void tuple_field_dealloc(TupleField *self) {
    Py_XDECREF(self->owner);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The offset of `owner`'s object slot `name`, or -1 with an error set. */
static Py_ssize_t slot_offset(PyObject *owner, const char *name) {
    PyObject *descr = PyDict_GetItemString(((PyTypeObject *)owner)->tp_dict, name);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "%s is not a slot of %R", name, owner);
        return -1;
    }
    return ((PyMemberDescrObject *)descr)->d_member->offset;
}

static PyObject *tuple_field_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"owner", "slot", "index", "writable", NULL};
    PyObject *owner, *slot;
    Py_ssize_t index;
    int writable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!Un|p:TupleField", keywords, &PyType_Type, &owner, &slot,
                                     &index, &writable))
        return NULL;
    if (index < 0) {
        PyErr_SetString(PyExc_ValueError, "TupleField: a negative index");
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(slot);
    Py_ssize_t offset = name == NULL ? -1 : slot_offset(owner, name);
    if (offset < 0)
        return NULL;
    TupleField *self = (TupleField *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->owner = (PyTypeObject *)Py_NewRef(owner);
    self->offset = offset;
    self->index = index;
    self->writable = writable;
    self->name = Py_NewRef(slot);
    return (PyObject *)self;
}

/* The tuple in `obj`'s slot (borrowed), or NULL with an error set. */
static PyObject *tuple_field_tuple(TupleField *self, PyObject *obj) {
    if (!PyObject_TypeCheck(obj, self->owner)) {
        PyErr_Format(PyExc_TypeError, "a field of %s read on a %s", self->owner->tp_name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyObject *held = *(PyObject **)((char *)obj + self->offset);
    if (held == NULL) {
        PyErr_Format(PyExc_AttributeError, "%U is not set", self->name);
        return NULL;
    }
    if (!PyTuple_Check(held) || PyTuple_GET_SIZE(held) <= self->index) {
        PyErr_Format(PyExc_TypeError, "%U holds no item %zd", self->name, self->index);
        return NULL;
    }
    return held;
}

static PyObject *tuple_field_get(PyObject *descr, PyObject *obj, PyObject *Py_UNUSED(type)) {
    TupleField *self = (TupleField *)descr;
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(descr);
    PyObject *held = tuple_field_tuple(self, obj);
    return held == NULL ? NULL : Py_NewRef(PyTuple_GET_ITEM(held, self->index));
}

static int tuple_field_set(PyObject *descr, PyObject *obj, PyObject *value) {
    TupleField *self = (TupleField *)descr;
    if (!self->writable || value == NULL) {
        PyErr_Format(PyExc_AttributeError, "this field is part of %U: make a new object instead", self->name);
        return -1;
    }
    PyObject *held = tuple_field_tuple(self, obj);
    if (held == NULL)
        return -1;
    /* A new tuple: the old one may be shared with other objects. */
    const Py_ssize_t size = PyTuple_GET_SIZE(held);
    PyObject *replaced = PyTuple_New(size);
    if (replaced == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < size; i++)
        PyTuple_SET_ITEM(replaced, i, Py_NewRef(i == self->index ? value : PyTuple_GET_ITEM(held, i)));
    PyObject **at = (PyObject **)((char *)obj + self->offset);
    PyObject *old = *at;
    *at = replaced;
    Py_DECREF(old);
    return 0;
}

static PyMemberDef tuple_field_members[] = {
    {"index", T_PYSSIZET, offsetof(TupleField, index), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TupleFieldType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netscope.collectors._speedups.TupleField",
    .tp_basicsize = sizeof(TupleField),
    .tp_dealloc = (destructor)tuple_field_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TupleField(owner, slot, index, writable=False): item `index` of the tuple in slot `slot`",
    .tp_members = tuple_field_members,
    .tp_descr_get = tuple_field_get,
    .tp_descr_set = tuple_field_set,
    .tp_new = tuple_field_new,
};

/* CounterName: Socket.counter_name, the counter bar's bucket of a socket, worked out from its protocol (the key's
 * first item) and its state on each read instead of kept in a slot of its own (16 bytes a socket in each process:
 * a Socket's size class 96 -> 80 bytes). Its twin is model.counter_name_of; a read costs about what a slot's does. */
typedef struct {
    PyObject_HEAD
    PyTypeObject *owner;
    Py_ssize_t key_offset, state_offset;
} CounterName;

static PyObject *text_syn_recv, *text_new_syn_recv, *text_udp;

static void counter_name_dealloc(CounterName *self) {
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *counter_name_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"owner", NULL};
    PyObject *owner;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!:CounterName", keywords, &PyType_Type, &owner))
        return NULL;
    Py_ssize_t key_offset = slot_offset(owner, "key"), state_offset = slot_offset(owner, "state");
    if (key_offset < 0 || state_offset < 0)
        return NULL;
    CounterName *self = (CounterName *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->owner = (PyTypeObject *)Py_NewRef(owner);
    self->key_offset = key_offset;
    self->state_offset = state_offset;
    return (PyObject *)self;
}

static PyObject *counter_name_get(PyObject *descr, PyObject *obj, PyObject *Py_UNUSED(type)) {
    CounterName *self = (CounterName *)descr;
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(descr);
    if (!PyObject_TypeCheck(obj, self->owner)) {
        PyErr_Format(PyExc_TypeError, "counter_name of %s read on a %s", self->owner->tp_name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyObject *key = *(PyObject **)((char *)obj + self->key_offset);
    PyObject *state = *(PyObject **)((char *)obj + self->state_offset);
    if (key == NULL || state == NULL || !PyTuple_Check(key) || PyTuple_GET_SIZE(key) < 1 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(key, 0)) || !PyUnicode_Check(state)) {
        PyErr_SetString(PyExc_AttributeError, "counter_name: the socket's key or state is not set");
        return NULL;
    }
    PyObject *proto = PyTuple_GET_ITEM(key, 0);
    /* tcp, tcp6: its state (a connection not yet accepted counts as SYN_RECV); u_*: a unix socket's state; udp,
     * udp6, raw, raw6: UDP */
    if (PyUnicode_GET_LENGTH(proto) >= 3 && PyUnicode_READ_CHAR(proto, 0) == 't' &&
        PyUnicode_READ_CHAR(proto, 1) == 'c' && PyUnicode_READ_CHAR(proto, 2) == 'p') {
        int syn = PyUnicode_GET_LENGTH(state) != PyUnicode_GET_LENGTH(text_new_syn_recv)
                      ? 1 : PyUnicode_Compare(state, text_new_syn_recv);
        if (syn == -1 && PyErr_Occurred())
            return NULL;
        return Py_NewRef(syn == 0 ? text_syn_recv : state);
    }
    if (PyUnicode_GET_LENGTH(proto) >= 2 && PyUnicode_READ_CHAR(proto, 0) == 'u' &&
        PyUnicode_READ_CHAR(proto, 1) == '_')
        return Py_NewRef(state);
    return Py_NewRef(text_udp);
}

static PyTypeObject CounterNameType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netscope.collectors._speedups.CounterName",
    .tp_basicsize = sizeof(CounterName),
    .tp_dealloc = (destructor)counter_name_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CounterName(owner): a socket's counter bar bucket, from its protocol and state",
    .tp_descr_get = counter_name_get,
    .tp_new = counter_name_new,
};

/* BytesSortKey: row_order.bytes_sort_key(column, sock) for one of its columns, made in one pass into one bytes
 * object. The connection table keeps its rows in this order without holding each row's key (88 bytes a row): it
 * bisects the rows themselves, making the key of each row it compares (about 17 at 100,000 rows), which costs what
 * the held keys saved only where a key is this cheap to make. The parts that are looked up (an address's bytes, a
 * program's, a protocol's) come from the Python functions given, which cache them; the rest is packed here as
 * struct's ">I" (ports), ">Bdq" (not listening, first seen, pid) and ">q" (the key's last item) would. */
enum { KEY_PROGRAM = 0, KEY_LOCAL = 1, KEY_REMOTE = 2 };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int column;
    PyObject *address_bytes, *program_bytes, *proto_bytes;
} BytesSortKey;

static PyObject *attr_state, *attr_first_seen, *text_listen, *text_unconn;

static void bytes_sort_key_dealloc(BytesSortKey *self) {
    Py_XDECREF(self->address_bytes);
    Py_XDECREF(self->program_bytes);
    Py_XDECREF(self->proto_bytes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static void put_be(char *at, uint64_t value, int size) {
    for (int i = size - 1; i >= 0; i--, value >>= 8)
        at[i] = (char)(value & 0xff);
}

/* A port (or a unix socket's inode standing in for one) as ">I" packs it; -1 with an error set if out of range. */
static int port_value(PyObject *port, uint32_t *value) {
    unsigned long number = PyLong_AsUnsignedLong(port);
    if (number == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (number > 0xffffffffUL) {
        PyErr_SetString(PyExc_OverflowError, "BytesSortKey: a port over 32 bits");
        return -1;
    }
    *value = (uint32_t)number;
    return 0;
}

static PyObject *called_bytes(PyObject *function, PyObject *argument) {
    PyObject *result = PyObject_CallOneArg(function, argument);
    if (result != NULL && !PyBytes_Check(result)) {
        PyErr_Format(PyExc_TypeError, "BytesSortKey: %R gave %R, not bytes", function, result);
        Py_CLEAR(result);
    }
    return result;
}

/* Whether the socket is listening, as Socket.is_listening says: LISTEN, or UNCONN and not TCP. -1: an error. */
static int listening(PyObject *state, PyObject *proto) {
    int is = PyUnicode_Compare(state, text_listen);
    if (is == -1 && PyErr_Occurred())
        return -1;
    if (is == 0)
        return 1;
    is = PyUnicode_Compare(state, text_unconn);
    if (is == -1 && PyErr_Occurred())
        return -1;
    if (is != 0)
        return 0;
    return !(PyUnicode_GET_LENGTH(proto) >= 3 && PyUnicode_READ_CHAR(proto, 0) == 't' &&
             PyUnicode_READ_CHAR(proto, 1) == 'c' && PyUnicode_READ_CHAR(proto, 2) == 'p');
}

static PyObject *bytes_sort_key_of(BytesSortKey *self, PyObject *sock) {
    PyObject *result = NULL, *first = NULL, *second = NULL, *proto_part = NULL, *name = NULL, *pid = NULL;
    PyObject *state = NULL, *seen = NULL;
    uint32_t first_port, second_port;
    int not_listening = 0;
    double first_seen = 0.0;
    long long pid_value = 0, tie;
    PyObject *key = PyObject_GetAttr(sock, attr_key);
    if (key == NULL)
        return NULL;
    if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 6 || !PyUnicode_Check(PyTuple_GET_ITEM(key, 0))) {
        PyErr_SetString(PyExc_TypeError, "BytesSortKey: a socket's key is not its 6-tuple");
        goto done;
    }
    PyObject *proto = PyTuple_GET_ITEM(key, 0);
    int swap = self->column == KEY_REMOTE;
    if ((first = called_bytes(self->address_bytes, PyTuple_GET_ITEM(key, swap ? 3 : 1))) == NULL ||
        (second = called_bytes(self->address_bytes, PyTuple_GET_ITEM(key, swap ? 1 : 3))) == NULL ||
        port_value(PyTuple_GET_ITEM(key, swap ? 4 : 2), &first_port) < 0 ||
        port_value(PyTuple_GET_ITEM(key, swap ? 2 : 4), &second_port) < 0 ||
        (proto_part = called_bytes(self->proto_bytes, proto)) == NULL)
        goto done;
    tie = PyLong_AsLongLong(PyTuple_GET_ITEM(key, 5));
    if (tie == -1 && PyErr_Occurred())
        goto done;
    Py_ssize_t size = PyBytes_GET_SIZE(first) + 4 + PyBytes_GET_SIZE(second) + 4 + PyBytes_GET_SIZE(proto_part) + 8;
    if (self->column == KEY_PROGRAM) {
        if ((pid = PyObject_GetAttr(sock, attr_pid)) == NULL || (state = PyObject_GetAttr(sock, attr_state)) == NULL ||
            (seen = PyObject_GetAttr(sock, attr_first_seen)) == NULL)
            goto done;
        if (!PyUnicode_Check(state)) {
            PyErr_SetString(PyExc_TypeError, "BytesSortKey: a socket's state is not text");
            goto done;
        }
        int is_listening = listening(state, proto);
        if (is_listening < 0)
            goto done;
        not_listening = !is_listening;
        first_seen = PyFloat_AsDouble(seen);
        if (first_seen == -1.0 && PyErr_Occurred())
            goto done;
        if (pid != Py_None) {
            PyObject *program = PyObject_GetAttr(sock, attr_program);
            if (program == NULL)
                goto done;
            name = called_bytes(self->program_bytes, program);
            Py_DECREF(program);
            if (name == NULL)
                goto done;
            pid_value = PyLong_AsLongLong(pid);
            if (pid_value == -1 && PyErr_Occurred())
                goto done;
        }
        size += (name != NULL ? PyBytes_GET_SIZE(name) : 2) + 17;
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL)
        goto done;
    char *at = PyBytes_AS_STRING(result);
    if (self->column == KEY_PROGRAM) {
        if (name != NULL) {
            memcpy(at, PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name));
            at += PyBytes_GET_SIZE(name);
        } else {
            *at++ = 1; /* no owner: after every owned socket */
            *at++ = 0;
        }
        *at++ = (char)not_listening;
        uint64_t bits;
        memcpy(&bits, &first_seen, sizeof bits);
        put_be(at, bits, 8);
        put_be(at + 8, (uint64_t)pid_value, 8);
        at += 16;
    }
    memcpy(at, PyBytes_AS_STRING(first), PyBytes_GET_SIZE(first));
    at += PyBytes_GET_SIZE(first);
    put_be(at, first_port, 4);
    at += 4;
    memcpy(at, PyBytes_AS_STRING(second), PyBytes_GET_SIZE(second));
    at += PyBytes_GET_SIZE(second);
    put_be(at, second_port, 4);
    at += 4;
    memcpy(at, PyBytes_AS_STRING(proto_part), PyBytes_GET_SIZE(proto_part));
    at += PyBytes_GET_SIZE(proto_part);
    put_be(at, (uint64_t)tie, 8);
done:
    Py_XDECREF(first);
    Py_XDECREF(second);
    Py_XDECREF(proto_part);
    Py_XDECREF(name);
    Py_XDECREF(pid);
    Py_XDECREF(state);
    Py_XDECREF(seen);
    Py_DECREF(key);
    return result;
}

static PyObject *bytes_sort_key_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "BytesSortKey takes one socket");
        return NULL;
    }
    return bytes_sort_key_of((BytesSortKey *)callable, args[0]);
}

static PyObject *bytes_sort_key_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"column", "address_bytes", "program_bytes", "proto_bytes", NULL};
    const char *column;
    PyObject *address_bytes, *program_bytes, *proto_bytes;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sOOO:BytesSortKey", keywords, &column, &address_bytes,
                                     &program_bytes, &proto_bytes))
        return NULL;
    int code = strcmp(column, "program") == 0 ? KEY_PROGRAM
               : strcmp(column, "local") == 0 ? KEY_LOCAL
               : strcmp(column, "remote") == 0 ? KEY_REMOTE : -1;
    if (code < 0) {
        PyErr_Format(PyExc_ValueError, "%R has no bytes key", PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    BytesSortKey *self = (BytesSortKey *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = bytes_sort_key_vectorcall;
    self->column = code;
    self->address_bytes = Py_NewRef(address_bytes);
    self->program_bytes = Py_NewRef(program_bytes);
    self->proto_bytes = Py_NewRef(proto_bytes);
    return (PyObject *)self;
}

static PyTypeObject BytesSortKeyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netscope.collectors._speedups.BytesSortKey",
    .tp_basicsize = sizeof(BytesSortKey),
    .tp_dealloc = (destructor)bytes_sort_key_dealloc,
    .tp_vectorcall_offset = offsetof(BytesSortKey, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "BytesSortKey(column, address_bytes, program_bytes, proto_bytes)(sock): row_order.bytes_sort_key",
    .tp_new = bytes_sort_key_new,
};

static PyMethodDef methods[] = {
    {"fills_in_place", fills_in_place, METH_O, fills_in_place_doc},
    {"read_fd_links", read_fd_links, METH_VARARGS, read_fd_links_doc},
    {"parse_inet_diag", parse_inet_diag, METH_VARARGS, parse_inet_diag_doc},
    {"attach_owners", attach_owners, METH_VARARGS, attach_owners_doc},
    {"diff_keys", diff_keys, METH_VARARGS, diff_keys_doc},
    {"identities_gone", identities_gone, METH_VARARGS, identities_gone_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "netscope's compiled readers (see collectors/speedups.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject **names[] = {&attr_inode, &attr_pid, &attr_program, &attr_container, &attr_pid_start, &attr_key};
    const char *texts[] = {"inode", "pid", "program", "container", "pid_start", "key"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((*names[i] = PyUnicode_InternFromString(texts[i])) == NULL)
            return NULL;
    if ((attr_state = PyUnicode_InternFromString("state")) == NULL ||
        (attr_first_seen = PyUnicode_InternFromString("first_seen")) == NULL ||
        (text_listen = PyUnicode_InternFromString("LISTEN")) == NULL ||
        (text_unconn = PyUnicode_InternFromString("UNCONN")) == NULL)
        return NULL;
    if ((text_syn_recv = PyUnicode_InternFromString("SYN_RECV")) == NULL ||
        (text_new_syn_recv = PyUnicode_InternFromString("NEW_SYN_RECV")) == NULL ||
        (text_udp = PyUnicode_InternFromString("UDP")) == NULL)
        return NULL;
    if (PyType_Ready(&TupleFieldType) < 0 || PyType_Ready(&CounterNameType) < 0 || PyType_Ready(&IdentitiesType) < 0 ||
        PyType_Ready(&BytesSortKeyType) < 0)
        return NULL;
    PyObject *created = PyModule_Create(&module);
    if (created != NULL && (PyModule_AddObjectRef(created, "TupleField", (PyObject *)&TupleFieldType) < 0 ||
                            PyModule_AddObjectRef(created, "CounterName", (PyObject *)&CounterNameType) < 0 ||
                            PyModule_AddObjectRef(created, "Identities", (PyObject *)&IdentitiesType) < 0 ||
                            PyModule_AddObjectRef(created, "BytesSortKey", (PyObject *)&BytesSortKeyType) < 0))
        Py_CLEAR(created);
    return created;
}
