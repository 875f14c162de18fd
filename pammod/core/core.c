/* C edge of pam_jit_core.so (see core.h). No Go is entered from here. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "core.h"

/* The pid in which this library, and with it the Go runtime, was loaded.
 * The loader (pam_jit.so) enters Go only from this pid: after a fork the
 * runtime's threads are gone and a call into Go would hang. */
static pid_t core_pid;

__attribute__((constructor)) static void jit_core_record_pid(void)
{
	core_pid = getpid();
}

pid_t jit_core_pid(void)
{
	return core_pid;
}

const char *jit_item(pam_handle_t *pamh, int type)
{
	const void *v = NULL;
	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS)
		return NULL;
	return (const char *)v;
}

void jit_syslog(pam_handle_t *pamh, int prio, const char *msg)
{
	pam_syslog(pamh, prio, "%s", msg);
}

int jit_error(pam_handle_t *pamh, const char *msg)
{
	return pam_error(pamh, "%s", msg);
}

static void free_data(pam_handle_t *pamh __attribute__((unused)), void *data, int status __attribute__((unused)))
{
	free(data);
}

int jit_set_string(pam_handle_t *pamh, const char *name, const char *value)
{
	char *copy = strdup(value);
	if (copy == NULL)
		return PAM_BUF_ERR;
	int rc = pam_set_data(pamh, name, copy, free_data);
	if (rc != PAM_SUCCESS)
		free(copy);
	return rc;
}

const char *jit_get_string(pam_handle_t *pamh, const char *name)
{
	const void *v = NULL;
	if (pam_get_data(pamh, name, &v) != PAM_SUCCESS)
		return NULL;
	return (const char *)v;
}

int jit_putenv(pam_handle_t *pamh, const char *name_value)
{
	return pam_putenv(pamh, name_value);
}

const char *jit_getenv(pam_handle_t *pamh, const char *name)
{
	return pam_getenv(pamh, name);
}
