/* C edge of pam_jit_core.so: small helpers around libpam's variadic and
 * void-pointer APIs that cgo cannot call directly. */
#ifndef JIT_PAM_CORE_H
#define JIT_PAM_CORE_H

#include <sys/types.h>
#include <security/pam_modules.h>

pid_t jit_core_pid(void);
const char *jit_item(pam_handle_t *pamh, int type);
void jit_syslog(pam_handle_t *pamh, int prio, const char *msg);
int jit_error(pam_handle_t *pamh, const char *msg);
int jit_set_string(pam_handle_t *pamh, const char *name, const char *value);
const char *jit_get_string(pam_handle_t *pamh, const char *name);
int jit_putenv(pam_handle_t *pamh, const char *name_value);
const char *jit_getenv(pam_handle_t *pamh, const char *name);

#endif
