/* list.h (common/): intrusive doubly-linked lists, after systemd's src/basic/list.h.
 *
 * An item sits on a list through a pair of pointers named after the list
 * (LIST_FIELDS(Waiter, peer) gives peer_next and peer_prev), so one object
 * can sit on several lists at once; the head is a plain pointer to the
 * first item (LIST_HEAD). The list owns nothing: removing an item unlinks
 * it and leaves freeing it to whoever owns it. Every operation but
 * LIST_APPEND (which walks to the tail) is O(1).
 *
 *     struct Waiter { LIST_FIELDS(Waiter, waiters); ... };
 *     LIST_HEAD(Waiter, waiters);
 *     LIST_PREPEND(waiters, head, w);
 *     LIST_FOREACH_SAFE(waiters, w, next, head) LIST_REMOVE(waiters, head, w);
 */
#pragma once

#include <assert.h>
#include <stddef.h>

#define LIST_HEAD(t, name) t *name

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

/* Prepends item to the list at head; item must be on no such list.
 * Evaluates to item. */
#define LIST_PREPEND(name, head, item)                                                  \
        ({                                                                              \
                __typeof__(*(head)) **_head = &(head), *_item = (item);                 \
                assert(_item);                                                          \
                if ((_item->name##_next = *_head))                                      \
                        _item->name##_next->name##_prev = _item;                        \
                _item->name##_prev = NULL;                                              \
                *_head = _item;                                                         \
                _item;                                                                  \
        })

/* Appends item to the list at head (walking to its tail first). Evaluates to
 * item. */
#define LIST_APPEND(name, head, item)                                                   \
        ({                                                                              \
                __typeof__(*(head)) **_ahead = &(head), *_aitem = (item), *_tail;       \
                assert(_aitem);                                                         \
                _tail = *_ahead;                                                        \
                while (_tail && _tail->name##_next)                                     \
                        _tail = _tail->name##_next;                                     \
                _aitem->name##_next = NULL;                                             \
                _aitem->name##_prev = _tail;                                            \
                if (_tail)                                                              \
                        _tail->name##_next = _aitem;                                    \
                else                                                                    \
                        *_ahead = _aitem;                                               \
                _aitem;                                                                 \
        })

/* Unlinks item from the list at head and clears its links. Evaluates to
 * item. */
#define LIST_REMOVE(name, head, item)                                                   \
        ({                                                                              \
                __typeof__(*(head)) **_head = &(head), *_item = (item);                 \
                assert(_item);                                                          \
                if (_item->name##_next)                                                 \
                        _item->name##_next->name##_prev = _item->name##_prev;           \
                if (_item->name##_prev)                                                 \
                        _item->name##_prev->name##_next = _item->name##_next;           \
                else {                                                                  \
                        assert(*_head == _item);                                        \
                        *_head = _item->name##_next;                                    \
                }                                                                       \
                _item->name##_next = _item->name##_prev = NULL;                         \
                _item;                                                                  \
        })

#define LIST_IS_EMPTY(head) (!(head))

/* i walks the list from head; the body must not unlink i. */
#define LIST_FOREACH(name, i, head) for (__typeof__(*(head)) *i = (head); i; i = i->name##_next)

/* i walks the list from head while the body may unlink (and free) i: n
 * already holds the next item. The body must not unlink n. */
#define LIST_FOREACH_SAFE(name, i, n, head)                                             \
        for (__typeof__(*(head)) *n, *i = (head); i && ((n = i->name##_next), 1); i = n)
