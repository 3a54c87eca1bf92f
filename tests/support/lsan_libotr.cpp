// SPDX-License-Identifier: MIT
// LeakSanitizer settings for the test binaries that run libotr (linked into each, see
// tests/CMakeLists.txt) (read by the sanitizer runtime at start-up;
// inert in builds without sanitizers). libotr 4.1.1 leaks inside itself, independently of how
// it is called (checked against its 4.1.0 source):
//  - otrl_context_forget() never frees context->context_priv (from otrl_context_priv_new);
//  - otrl_auth_copy_on_key() copies an AKE state whose cipher/HMAC handles
//    (otrl_dh_compute_v2_auth_keys) are then overwritten without being closed;
//  - otrl_sm_step1/otrl_sm_step2a overwrite MPIs of a reused SMP state without releasing them.
// Only those libotr functions are suppressed, so a leak of ours (even of memory libotr hands
// us, such as an unfreed otrl_message_* result) is still reported. Matching them needs full
// stacks: libotr has no frame pointers, so the fast unwinder stops inside it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPOTR_SMP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MPOTR_SMP_ASAN 1
#endif

#ifdef MPOTR_SMP_ASAN
extern "C" {
const char* __asan_default_options();      // NOLINT(bugprone-reserved-identifier)
const char* __lsan_default_options();      // NOLINT(bugprone-reserved-identifier)
const char* __lsan_default_suppressions();  // NOLINT(bugprone-reserved-identifier)

const char* __asan_default_options() { return "fast_unwind_on_malloc=0"; }
const char* __lsan_default_options() { return "fast_unwind_on_malloc=0"; }
const char* __lsan_default_suppressions() {
  return "leak:otrl_context_priv_new\n"
         "leak:otrl_dh_compute_v2_auth_keys\n"
         "leak:otrl_sm_step1\n"
         "leak:otrl_sm_step2a\n";
}
}
#endif
