package crypt

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
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
		// yescrypt, libxcrypt's default ("j9T": RW, N=4096, r=32): salts of 0,
		// 3, 5, 12, 16 (mkpasswd's) and 64 bytes; passwords empty, long (300
		// and 511 bytes, libxcrypt's most), UTF-8, with "$" and a tab.
		{"password", "$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO."},
		{"kurma", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$FQJA1YnD4rc4Ge6OumxaAGMleSqTXJkOdDF/uaufWb1"},
		{"", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$5P1uc1zvKhieqEtKttbwCQrTPXpY1cK9wEnTDKAqLD8"},
		{"Hello world!", "$y$j9T$$nafePwkxhND.1RlpI/Pke8T2oF8pz.keBNRZlgMYCzA"},
		{"correct horse battery staple", "$y$j9T$abcd$MMLXHvgO1ImGpDxw2y.HPDVPM7L9Q6ccx6aKK0QyHRB"},
		{"kurma", "$y$j9T$abcdxy/$SH0px4W794L/1cr15DeK3tF7uLJh6AFKMkqRq.vPoD4"},
		{"kurma", "$y$j9T$3WzQtKnEh8b2VyPsJmDg7a1UxOrIlCf6Z0TwNqHkBe5Y/SvMpGjAd4X.RuLoFi9c3WzQtKnEh8b2VyPsJmDgx0$wqQRSgJ1TAiJXd52tiIvPqeRg3Hy7urGqBUSePqWsI."},
		{strings.Repeat("0123456789", 30), "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$ovoiAUl8Lj4wDizt1qwK0t9rjnbL50QoKxsSWy/L.V9"},
		{strings.Repeat("x", 511), "$y$j9T$abcd$v8SH49164a7PWCfXKvO1Es0r0K7CGc7Wi//FhKhiIfA"},
		{"pässwörd ☃ 密码", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$IgPO23vl0fkXUbBmwEXSEJVO8yXoOVg0m/7Mp5PgPM4"},
		{"p@ss w0rd\t!$y$", "$y$j9T$abcdefghijklmnop$Y50eLDa8ban.1Aq.5vfwJg5y6hByJaulOaCFqwg3G./"},
		// mkpasswd -R 1 to 4, 6 and 7 (r=8, N=1024 and 2048; r=32, N=1024 to
		// 16384), and r=8 with N=32768; j8T and below skip the N/64 pre-hash.
		{"kurma", "$y$j75$F5Jx5fExrKuPp53xLKQ..1$ntH03vcX3yq18YqyS6XQ88yGRt348eVB8zYNGz1PCE1"},
		{"kurma", "$y$j85$F5Jx5fExrKuPp53xLKQ..1$y1WreAAj5azijEaArJwsktYOsANonDnvV508d/oeCL1"},
		{"kurma", "$y$j7T$F5Jx5fExrKuPp53xLKQ..1$.3jIgUKbc7x9XfmsWV98esVGJSSSPOpWU5DRoQE62r9"},
		{"kurma", "$y$j8T$F5Jx5fExrKuPp53xLKQ..1$EnMnNmYHI3WdWruOseh4/7vOyzHJU2/CbZxIa6wXxLD"},
		{"kurma", "$y$jAT$F5Jx5fExrKuPp53xLKQ..1$aBsDaxwUo/c3LuXp/VfB1DT80NJaq.zC7HNjkNzMhN9"},
		{"kurma", "$y$jBT$F5Jx5fExrKuPp53xLKQ..1$aDQKXD5.xe39Uh6Yr3TzZfMQbhdBr2GMD9a1E4NG871"},
		{"kurma", "$y$jC5$abcdefghijklmnop$GzlHqsD9ku.RjynuuxSy5avKDsgEA5GGdmLobEIWju2"},
		// N=4 and 8; r=1 and 2; r=49, which takes two characters.
		{"kurma", "$y$j/T$abcd$TxF0yaTo5ZF0AUk.J8tQmmgWOy.j.fw5nhAg9s0XsJ4"},
		{"kurma", "$y$j0T$abcd$Gze7svfJEmOs4v/ZpO5euphnnc8a2tMvvW5VbJGCPi4"},
		{"kurma", "$y$j2.$abcd$Irk/Fbf7pD4qjhPzMc8JcIGebJC/MHpDN2PFoZWQyE4"},
		{"kurma", "$y$j3/$abcd$rUIuY9hNDqqsY57GIyfOgAruMjB/YcWyAi0nY8bZnO7"},
		{"kurma", "$y$j5k.$abcd$dAjONPIgbniHYHW4EP2PVsAgZc6GqAPoRu7c3zgENp/"},
		// p=2, 3 (unequal chunks of V) and 4; t=1, 3 and 49; p=2 with t=2;
		// a bit set libxcrypt ignores (16).
		{"kurma", "$y$j9T..$abcdefghijklmnop$bdo3Ef2KKvDYNwfxgCBR7r7oj9tC1K/EvkJaEXqlcv8"},
		{"kurma", "$y$j9T./$abcdefghijklmnop$yM8SSRjUNIfUyOMZl9Qo7di4KGe2WZlk0Pf81AjlY92"},
		{"kurma", "$y$jAT.0$abcdefghijklmnop$CvX8TA1RcT2W6n1JLpR1woZSYgmbjG.qeX8aZ7.xc07"},
		{"kurma", "$y$j9T/.$abcdefghijklmnop$AD5f3FPuS5Cy1w1r6W6sg0bK9zrplrfbkypLT.BTQLD"},
		{"kurma", "$y$j9T/0$abcdefghijklmnop$qf7/yinGcjyJxUXxjZLAKxnBaNsz8VCpwlnmT9KwdD."},
		{"kurma", "$y$j2./k.$abcd$9OeYxycauHv8WVX9Pdl.aUqcmyRZ3v6avmz8EUICZk1"},
		{"kurma", "$y$j8T0./$abcdefghijklmnop$YO2tdqZ50.b11lhEAjDbXUM75Md7nMNViX6qHusYgXD"},
		{"kurma", "$y$j9TD$abcdefghijklmnop$AOZ0ALPbIvkhfV5FXJXOcPZXoYKAHqeM4Q/JYaH3u9D"},
		// Classic scrypt (flavour 0), with p=2, 3 and 50 (p above N).
		{"kurma", "$y$.9T$abcdefghijklmnop$rh3lzOflYjRHAIO.MKINlG2iZ.TFX9tNWVBETR4qz61"},
		{"", "$y$.1.$abcd$xknpCAE7UfzA1CB5Gk27UVcnQTxgb3TrLXpZCQD0ig2"},
		{"kurma", "$y$.75..$abcd$vJYxwGXBHmuVEg3lBE5CtvuCMz6kTKomKO0NOMHSxn2"},
		{"kurma", "$y$.75./$abcd$OZGoDM6gA.j4RNEnGm81VMoH3idXWp4gJsMEKpHa/bC"},
		{"kurma", "$y$.1..k.$abcd$4oiewRDrdlrhB8JGRgSeZRfpRTadRDyEEWxGxP2yoiB"},
		// WORM (flavour 1), with t=1, 3 and 49, and p=2 with t=2.
		{"kurma", "$y$/9T$abcdefghijklmnop$6XFrENq1JY0pUqeBSH8Sf5cgAseW1vKeVza.05ZrnS5"},
		{"kurma", "$y$/2.$abcd$R4ISsoa5t6Z6KOCaf6mSoDvhBbdsesnrmggj8ff7qzB"},
		{"kurma", "$y$/75/.$abcd$RkHp/5SMbInBWwfn2nheD2J0VUKOiQA0h7Elbz1E4P6"},
		{"kurma", "$y$/75/0$abcd$nzmolpvbO.F73hbZ.kINgiojrPr8tKiUu.WJZW8Y4a8"},
		{"kurma", "$y$/2./k.$abcd$na8wem8g/O5EZtHgEPftBVhUZvOl.u866sNsR4.Ylk."},
		{"kurma", "$y$/750./$abcd$qZsmriyBFD4ogh7jUZ6B.QcQvCemYubCuFbcYrqvxL1"},
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
	for _, h := range []string{"$1$abc$def", "$7$abc$def", "none", "", "*"} {
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

// A "$y$" hash libxcrypt would refuse, or that asks for more than the
// limits, is an error before any memory is spent on it.
func TestYescryptMalformed(t *testing.T) {
	const sum = "7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO."
	for _, tc := range []struct{ name, hash string }{
		{"nothing", "$y$"},
		{"parameters cut", "$y$j9"},
		{"no salt", "$y$j9T"},
		{"setting without hash", "$y$j9T$abcdefghijklmnop"},
		{"empty salt, no hash", "$y$j9T$"},
		{"hash cut", "$y$j9T$abcdefghijklmnop$" + sum[:42]},
		{"hash too long", "$y$j9T$abcdefghijklmnop$" + sum + "."},
		{"hash of 33 bytes' characters", "$y$j9T$abcdefghijklmnop$" + sum + "..."},
		{"hash's unused bits set", "$y$j9T$abcdefghijklmnop$" + sum[:42] + "z"},
		{"character outside base 64", "$y$j9T$abcdefghijklmnop$" + sum[:20] + "*" + sum[21:]},
		{"salt of one character", "$y$j9T$a$" + sum},
		{"salt's unused bits set", "$y$j9T$ab$" + sum},
		{"character in the salt", "$y$j9T$ab_d$" + sum},
		{"dollar in the salt", "$y$j9T$ab$cd$" + sum},
		{"salt above 64 bytes", "$y$j9T$" + strings.Repeat("abcd", 22) + "$" + sum},
		{"other RW flavour", "$y$i9T$abcd$" + sum},
		{"flavour out of range", "$y$z9T$abcd$" + sum},
		{"character in the parameters", "$y$j9*$abcd$" + sum},
		{"number cut", "$y$j9z$abcd$" + sum},
		{"optional number cut", "$y$j9T/$abcd$" + sum},
		{"N=2", "$y$j.T$abcd$" + sum},
		{"N=2^32", "$y$jTT$abcd$" + sum},
		{"N=2^2 with p=2 (N/p at most 3)", "$y$j/T..$abcd$" + sum},
		{"hash upgrades (g)", "$y$j9T1.$abcd$" + sum},
		{"ROM", "$y$j9T5.$abcd$" + sum},
		{"t with classic scrypt", "$y$.9T/.$abcd$" + sum},
		{"r·p at 2^30", "$y$j9zzzzzz$abcd$" + sum},
		{"2 GiB", "$y$jGT$abcd$" + sum},
		{"8 TiB", "$y$jST$abcd$" + sum},
		{"r of 2^24", "$y$.1yzzzz$abcd$" + sum},
		{"p of 2^19", "$y$.1..y....$abcd$" + sum},
		{"t of 2^30", "$y$j9T/zzzzzT$abcd$" + sum},
		{"t of 2^30 for WORM", "$y$/9T/zzzzzT$abcd$" + sum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := Verify(tc.hash, "kurma")
			runtime.ReadMemStats(&after)
			if err == nil || errors.Is(err, ErrMismatch) || errors.Is(err, ErrUnsupported) {
				t.Errorf("Verify(%s): %v, want a malformed or too costly hash", tc.hash, err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
				t.Errorf("Verify(%s) allocated %d bytes before its error, want at most 1 MiB", tc.hash, got)
			}
		})
	}
}

// cheap reports whether Verify checks hash in a moment, so that the
// fuzzer does not wait on the costs hashes may rightly ask for.
func cheap(hash string) bool {
	if h, err := parseYescrypt(hash); err == nil {
		loops, _ := smixLoops(h.params.n/uint64(h.params.p), h.params.t, h.params.flags&yescryptRW != 0, h.params.p)
		return 128*uint64(h.params.r)*uint64(h.params.p)*(h.params.n+loops) <= 32<<20
	}
	if _, r, ok := strings.Cut(hash, "rounds="); ok {
		n, _, _ := strings.Cut(r, "$")
		if v, err := strconv.Atoi(n); err == nil && v > 20000 {
			return false
		}
	}
	if strings.HasPrefix(hash, "$2") && len(hash) >= 6 {
		if c, err := strconv.Atoi(hash[4:6]); err == nil && c > 6 {
			return false
		}
	}
	return true
}

// Verify never panics, whatever the hash.
func FuzzVerify(f *testing.F) {
	for _, h := range []string{
		"$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO.",
		"$y$j2./k.$abcd$9OeYxycauHv8WVX9Pdl.aUqcmyRZ3v6avmz8EUICZk1",
		"$y$.75..$abcd$vJYxwGXBHmuVEg3lBE5CtvuCMz6kTKomKO0NOMHSxn2",
		"$y$/750./$abcd$qZsmriyBFD4ogh7jUZ6B.QcQvCemYubCuFbcYrqvxL1",
		"$y$j9T$ab$cd$", "$y$j9TD$abcd$", "$y$jzzzzzz$",
		"$6$rounds=1000$abcdefghijklmnop$QmIfGOkGgO96UUNvH3poHZ99E4fIptmnsuS57WBC39lIOOibIjy/9fBT4.s40aIlXE4yjlvO3tvMAkiyMKICA0",
		"$5$saltstring$iKtUhQNmJSwT446MHAn3y9uRDkBZ7hkB3sYIXdXNN4B",
		"$2b$04$U2nZLn9nK1xJOAiUFYf7AuuR0HwfndvoDyQbbxeLJRljtdl.XZq1u",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, hash string) {
		if !cheap(hash) {
			t.Skip("costly")
		}
		_ = Verify(hash, "kurma") // any answer but a panic
	})
}

// The time of one login's check at libxcrypt's default cost (16 MiB).
// On a 2-core AMD EPYC VM this took 26 ms, and libxcrypt's C (Perl's
// crypt) 20 ms; at -R 11 (1 GiB), 1.7 to 2.4 s against 1.4 s.
func BenchmarkYescrypt(b *testing.B) {
	const hash = "$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO."
	for b.Loop() {
		if err := Verify(hash, "password"); err != nil {
			b.Fatal(err)
		}
	}
}
