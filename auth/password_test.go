package auth

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h1, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h1, "correct horse") {
		t.Errorf("hash %q is not an argon2id PHC string, or holds the password", h1)
	}
	tests := []struct {
		hash, password string
		want           bool
	}{
		{h1, "correct horse", true},
		{h2, "correct horse", true},
		{h1, "correct horsE", false},
		{h1, "", false},
		{"", "", false},
		{"$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", "x", false},
		{strings.Replace(h1, "v=19", "v=16", 1), "correct horse", false},
		{strings.Replace(h1, "t=2", "t=0", 1), "correct horse", false},
		{h1[:len(h1)-4], "correct horse", false},
	}
	for i, tt := range tests {
		if got := VerifyPassword(tt.hash, tt.password); got != tt.want {
			t.Errorf("case %d: VerifyPassword = %v, want %v", i, got, tt.want)
		}
	}
}
