package seed

import "github.com/edgelicense/caddy-license-api/auth"

// PasswordHash returns the hash to store for a user whose seed password
// is password, given the hash stored now: the stored one when it still
// matches, so that re-importing a seed (every reload does) neither pays for
// a slow hash per user nor changes anything; a new one otherwise; "" when
// the seed gives no password.
func PasswordHash(stored, password string) (string, error) {
	if password == "" {
		return "", nil
	}
	if stored != "" && auth.VerifyPassword(stored, password) {
		return stored, nil
	}
	return auth.HashPassword(password)
}
