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

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
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

static PyMethodDef methods[] = {
    {"read_fd_links", read_fd_links, METH_VARARGS, read_fd_links_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "netscope's compiled readers (see collectors/speedups.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
