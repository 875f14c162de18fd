/*
 * Batching of jit_io's log_* calls, between sudo's relay thread (which
 * appends) and Go (which takes whole batches). See iobatch.c.
 */
#ifndef JIT_IOBATCH_H
#define JIT_IOBATCH_H

#include <stddef.h>

#define JIT_BATCH_DATA	(256 * 1024)
#define JIT_BATCH_CALLS	2048

/* One log_* call: its stream, its bytes' place in data, and when it came
 * (CLOCK_MONOTONIC, µs). */
struct jit_call {
	int		stream;
	unsigned int	len;
	long long	us;
};

struct jit_batch {
	unsigned int	ncalls;
	size_t		len;
	struct jit_call	call[JIT_BATCH_CALLS];
	unsigned char	data[JIT_BATCH_DATA];
};

/* What jit_batch_add did. */
enum {
	JIT_BATCH_ADDED,	/* appended */
	JIT_BATCH_FIRST,	/* appended to an empty batch: Go must arm its timer */
	JIT_BATCH_FULL,		/* no room: Go must take the batch first */
	JIT_BATCH_OFF		/* not batching (failed, or too big): enter Go */
};

void jit_batch_start(void);
void jit_batch_stop(void);
int jit_batch_add(int stream, const char *buf, unsigned int len);
struct jit_batch *jit_batch_take(void);
long long jit_batch_now_us(void);

#endif
