/*
 * pam_jit.so: placeholder until the PAM issue lands. It answers PAM_IGNORE
 * to everything, so a stack that lists it behaves as if it were absent.
 */
#include <security/pam_modules.h>

#define UNUSED __attribute__((unused))

int pam_sm_acct_mgmt(pam_handle_t *pamh UNUSED, int flags UNUSED, int argc UNUSED, const char **argv UNUSED)
{
	return PAM_IGNORE;
}
