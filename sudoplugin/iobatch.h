/*
 * Batching of jit_io's log_* calls between sudo's relay thread, which
 * appends, and Go, which takes whole batches. See iobatch.c.
 */
#ifndef JIT_IOBATCH_H
#define JIT_IOBATCH_H

#include <stddef.h>

#define JIT_STREAMS	5
#define JIT_BATCH_CALLS	2048

/* One log_* call: its stream, its length, and when it came
 * (CLOCK_MONOTONIC, µs). Its bytes are already in the stream's buffer. */
struct jit_call {
	int		stream;
	unsigned int	len;
	long long	us;
};

struct jit_batch {
	unsigned int	ncalls;
	struct jit_call	call[JIT_BATCH_CALLS];
};

/* What jit_batch_add did. */
enum {
	JIT_BATCH_ADDED,	/* recorded */
	JIT_BATCH_FIRST,	/* recorded, the first while no timer is armed: Go arms one */
	JIT_BATCH_NOROOM	/* not recorded: Go must take this call */
};

void jit_batch_start(void);
void jit_batch_stop(void);
void jit_batch_armed(int armed);
int jit_batch_add(int stream, const char *buf, unsigned int len);
struct jit_batch *jit_batch_take(void);
void jit_batch_lend(int stream, unsigned char *base, size_t used, size_t cap);

#endif
