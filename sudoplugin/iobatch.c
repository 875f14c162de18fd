/*
 * sudo calls jit_io's log_* once per read of the command's output, about
 * 3000 times for 10 MB on a tty. Entering Go costs more than recording the
 * bytes: cgo hands the thread to the Go scheduler and back, and Go's
 * monitor thread then keeps waking to take the scheduler slot back from a
 * thread that is "in C". So a call that fits is handled here: its bytes
 * are appended to the chunk buffer Go lent for its stream (memory Go
 * mapped, outside its heap), and (stream, length, time) to the current
 * batch. Go enters only when a call does not fit, when a batch starts while
 * no flush timer is armed (to arm one), on its timer, and for events and
 * close.
 *
 * Go takes a batch under its recorder lock; taking it also takes back
 * every lent buffer, so Go never seals a buffer C may still write to, and
 * lends buffers again before it lets go of the lock. Two batches
 * alternate, so that the relay thread can go on appending while Go reads
 * the one it took; batches reach Go in order because only Go, under its
 * lock, takes them. The mutex here guards the swap and the lending against
 * the relay thread's appends.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "iobatch.h"

struct lent {
	unsigned char	*base;
	size_t		used, cap;
};

static struct jit_batch batches[2];
static struct jit_batch *cur = &batches[0];
static struct lent lent[JIT_STREAMS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int on;
static int armed;	/* Go's flush timer is armed: a new batch needs no call */

static long long
now_us(void)
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

/* jit_batch_armed tells whether Go's flush timer is armed; Go clears it
 * before the timer takes the batch, so a batch that starts after that take
 * arms the timer again. */
void
jit_batch_armed(int a)
{
	pthread_mutex_lock(&mu);
	armed = a;
	pthread_mutex_unlock(&mu);
}

/* jit_batch_stop sends every later call to Go: the recording failed, and
 * Go answers each call with -1. */
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
	struct lent *l;
	struct jit_call *c;
	int rc = JIT_BATCH_NOROOM;

	if (stream < 0 || stream >= JIT_STREAMS)
		return rc;
	pthread_mutex_lock(&mu);
	l = &lent[stream];
	if (on && cur->ncalls < JIT_BATCH_CALLS && l->base != NULL &&
	    l->cap - l->used >= len) {
		rc = cur->ncalls == 0 && !armed ? JIT_BATCH_FIRST : JIT_BATCH_ADDED;
		memcpy(l->base + l->used, buf, len);
		l->used += len;
		c = &cur->call[cur->ncalls++];
		c->stream = stream;
		c->len = len;
		c->us = now_us();
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* jit_batch_take returns the current batch, makes the other one (empty)
 * current, and takes back the lent buffers. */
struct jit_batch *
jit_batch_take(void)
{
	struct jit_batch *b;

	pthread_mutex_lock(&mu);
	b = cur;
	cur = cur == &batches[0] ? &batches[1] : &batches[0];
	cur->ncalls = 0;
	memset(lent, 0, sizeof(lent));
	pthread_mutex_unlock(&mu);
	return b;
}

/* jit_batch_lend lets calls for stream append to base[used:cap] until the
 * next take. */
void
jit_batch_lend(int stream, unsigned char *base, size_t used, size_t cap)
{
	if (stream < 0 || stream >= JIT_STREAMS)
		return;
	pthread_mutex_lock(&mu);
	lent[stream].base = base;
	lent[stream].used = used;
	lent[stream].cap = cap;
	pthread_mutex_unlock(&mu);
}
