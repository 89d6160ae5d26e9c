// Package e2e holds Kurma's end-to-end tests: each boots the real image
// in QEMU (tests/qemu) and asserts on what a user would see: console
// lines, API answers, files on disk. They run with KURMA_E2E=1 (make
// test-e2e) and skip otherwise. Boots are few and each checks as much as
// it can share.
package e2e
