package crypt

import (
	"errors"
	"testing"
)

// Hashes made with the C library's crypt(3) (libxcrypt, Debian 12).
func TestVerify(t *testing.T) {
	for _, tc := range []struct{ password, hash string }{
		{"kurma", "$6$saltsalt$87BVuILMV2v3UX1E2t.14Z5QTrDJ0KUhdSbh9Hib615GITUD3pN4J5819KebyeT7YmJ25al0lVFTBNsubMN510"},
		{"Hello world!", "$6$saltsalt$pn.eNCAqRIao3pxsOGdjVa9wVR7Rb/3WnbxOluoQKVZPzLuyetx3yF6VIZDfQnn/arrFVfrq3BqRb9gLqhI5z0"},
		{"", "$6$saltsalt$qkTgsCrWMTAS9gBGcf9W60sFfH.hU0oTCAOJjhbz5tSp/sU3/xXZK4OFwCtq8lIIdpJ6CatVdOTSHKp97TPkt/"},
		{"kurma", "$6$rounds=1000$abcdefghijklmnop$QmIfGOkGgO96UUNvH3poHZ99E4fIptmnsuS57WBC39lIOOibIjy/9fBT4.s40aIlXE4yjlvO3tvMAkiyMKICA0"},
		{"Hello world!", "$6$rounds=1000$abcdefghijklmnop$mSIKhxABeExHRDiTozcmHLVRzYEaXMe.Eb7qHmqtfxlJelJaCvukwKMUYfsRoFElmyP1/b4Q2MTG2dVeNqRrY0"},
		{"kurma", "$6$$0XYbNNwEldq81f6rW27vPC.asvRQp8KE1WAziiPwvFvs7P8GjJvy5yB2GdinRoMLjIdwmvmnXQlkdwCpMDx7U."},
		{"kurma", "$5$saltstring$iKtUhQNmJSwT446MHAn3y9uRDkBZ7hkB3sYIXdXNN4B"},
		{"Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"", "$5$saltstring$FdNfA4gXqvCeO6iZs7G/.wwwoywYZqo0l1pwmfWaBA7"},
		{"kurma", "$5$rounds=5000$toolongsaltstrin$alrYCRJlN7yv4XbOqJpYnj.XFcK8EgofqgYOk.dMKS4"},
		{"kurma", "$2b$12$U2nZLn9nK1xJOAiUFYf7AuuR0HwfndvoDyQbbxeLJRljtdl.XZq1u"},
		{"kurma", "$2y$12$U2nZLn9nK1xJOAiUFYf7AuuR0HwfndvoDyQbbxeLJRljtdl.XZq1u"},
	} {
		if err := Verify(tc.hash, tc.password); err != nil {
			t.Errorf("Verify(%s, %q): %v", tc.hash, tc.password, err)
		}
		if err := Verify(tc.hash, tc.password+"x"); !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%s, a wrong password): %v, want ErrMismatch", tc.hash, err)
		}
		if !Supported(tc.hash) {
			t.Errorf("Supported(%s) is false", tc.hash)
		}
	}
}

func TestUnsupportedAndMalformed(t *testing.T) {
	for _, h := range []string{"$y$j9T$abc$def", "$1$abc$def", "none", "", "*"} {
		if err := Verify(h, "kurma"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Verify(%q): %v, want ErrUnsupported", h, err)
		}
	}
	// libxcrypt refuses fewer than 1000 rounds rather than raising them.
	for _, h := range []string{"$6$rounds=10$roundstoolow$abc", "$6$rounds=x$a$b"} {
		if err := Verify(h, "kurma"); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%q): %v, want a malformed hash", h, err)
		}
	}
}
