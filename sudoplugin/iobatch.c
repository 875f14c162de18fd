/*
 * sudo calls jit_io's log_* once per read of the command's output, about
 * 3000 times for 10 MB on a tty. Entering Go costs more than recording the
 * bytes: cgo hands the thread to the Go scheduler and back, and Go's
 * monitor thread then keeps waking to take the scheduler slot back from a
 * thread that is "in C". So each call only appends its bytes and a record
 * of (stream, length, time) to the current batch here, and Go takes whole
 * batches: when one is full, and from its flush timer.
 *
 * Two batches alternate. Go takes one under its recorder lock, which it
 * holds until it has copied the batch out, so a batch is never refilled
 * while Go reads it, and batches reach Go in order. The mutex here only
 * guards the swap against the relay thread's appends.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "iobatch.h"

static struct jit_batch batches[2];
static struct jit_batch *cur = &batches[0];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int on;

long long
jit_batch_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* jit_batch_start turns batching on (the recording is open). */
void
jit_batch_start(void)
{
	pthread_mutex_lock(&mu);
	on = 1;
	pthread_mutex_unlock(&mu);
}

/* jit_batch_stop makes every later call enter Go: the recording failed,
 * and Go answers each call with -1. */
void
jit_batch_stop(void)
{
	pthread_mutex_lock(&mu);
	on = 0;
	pthread_mutex_unlock(&mu);
}

int
jit_batch_add(int stream, const char *buf, unsigned int len)
{
	struct jit_call *c;
	int rc;

	pthread_mutex_lock(&mu);
	if (!on || len > JIT_BATCH_DATA) {
		rc = JIT_BATCH_OFF;
	} else if (cur->ncalls == JIT_BATCH_CALLS ||
	    JIT_BATCH_DATA - cur->len < len) {
		rc = JIT_BATCH_FULL;
	} else {
		rc = cur->ncalls == 0 ? JIT_BATCH_FIRST : JIT_BATCH_ADDED;
		c = &cur->call[cur->ncalls++];
		c->stream = stream;
		c->len = len;
		c->us = jit_batch_now_us();
		memcpy(cur->data + cur->len, buf, len);
		cur->len += len;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* jit_batch_take returns the current batch and makes the other one, empty,
 * current. The caller holds Go's recorder lock (see above). */
struct jit_batch *
jit_batch_take(void)
{
	struct jit_batch *b;

	pthread_mutex_lock(&mu);
	b = cur;
	cur = cur == &batches[0] ? &batches[1] : &batches[0];
	cur->ncalls = 0;
	cur->len = 0;
	pthread_mutex_unlock(&mu);
	return b;
}
