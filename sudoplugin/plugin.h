/*
 * The C half of jit_sudo.so: what Go calls in C. The plugin struct and the
 * trampolines that enter Go live in plugin.c.
 */
#ifndef JIT_SUDO_PLUGIN_H
#define JIT_SUDO_PLUGIN_H

#include <sys/types.h>

/* jit_print shows msg through sudo's (variadic) printf; type is a
 * SUDO_CONV_*_MSG value. Returns what sudo's printf returned, -1 without one. */
int jit_print(int msg_type, const char *msg);

/* jit_conv asks sudo's conversation function one question. *reply gets
 * sudo's malloc'd answer (or NULL); the caller frees it. Returns 0 on
 * success, -1 on failure or when sudo gave no conversation function. */
int jit_conv(int msg_type, const char *msg, char **reply);

/* jit_open_pid is the pid that called open; 0 before. */
pid_t jit_open_pid(void);

#endif
