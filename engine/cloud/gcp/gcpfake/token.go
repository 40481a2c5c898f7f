package gcpfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// grantJWTBearer is the grant service accounts use (RFC 7523).
const grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

type publicKey struct {
	email string // "" accepts any issuer
	key   *rsa.PublicKey
}

type authorizedUser struct{ clientID, clientSecret string }

// RegisterKey lets the token endpoint accept assertions signed by the
// private half of key, with key id kid, issued by email ("" for any).
func (s *Server) RegisterKey(kid, email string, key *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[kid] = &publicKey{email: email, key: key}
}

// ServiceAccountJSON creates an RSA key for a service account of project,
// registers it and returns the content of a service-account key file
// whose token_uri points at the fake.
func (s *Server) ServiceAccountJSON(tb testing.TB, project string) []byte {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	var kidBytes [20]byte
	_, _ = rand.Read(kidBytes[:])
	kid := fmt.Sprintf("%x", kidBytes)
	email := "fleet@" + project + ".iam.gserviceaccount.com"
	s.RegisterKey(kid, email, &key.PublicKey)
	b, err := json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": kid,
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "100000000000000000001",
		"token_uri":      s.TokenURL(),
	}, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// AuthorizedUserJSON registers a client and refresh token and returns an
// authorized_user file (what gcloud auth application-default login
// writes) whose token_uri points at the fake.
func (s *Server) AuthorizedUserJSON() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	refresh := randomToken("1//refresh-")
	u := authorizedUser{clientID: "fleet-test.apps.googleusercontent.com", clientSecret: randomToken("secret-")}
	s.users[refresh] = u
	b, _ := json.MarshalIndent(map[string]string{
		"type":          "authorized_user",
		"client_id":     u.clientID,
		"client_secret": u.clientSecret,
		"refresh_token": refresh,
		"token_uri":     s.TokenURL(),
	}, "", "  ")
	return b
}

// token is the OAuth token endpoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", err.Error())
		return
	}
	switch g := r.PostForm.Get("grant_type"); g {
	case grantJWTBearer:
		if err := s.checkAssertion(r.PostForm.Get("assertion")); err != nil {
			tokenError(w, "invalid_grant", err.Error())
			return
		}
	case "refresh_token":
		u, ok := s.users[r.PostForm.Get("refresh_token")]
		if !ok || u.clientID != r.PostForm.Get("client_id") || u.clientSecret != r.PostForm.Get("client_secret") {
			tokenError(w, "invalid_grant", "Bad Request")
			return
		}
	default:
		tokenError(w, "unsupported_grant_type", "Invalid grant_type: "+g)
		return
	}
	tok := randomToken("ya29.fake-")
	s.tokens[tok] = time.Now().Add(time.Hour)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   3600,
	})
}

// checkAssertion verifies a service account's JWT: RS256 signature by a
// registered key, issuer, audience (the token endpoint), scope and times.
func (s *Server) checkAssertion(assertion string) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Exp   int64  `json:"exp"`
		Iat   int64  `json:"iat"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("JWT header: %v", err)
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("JWT claims: %v", err)
	}
	if header.Alg != "RS256" {
		return fmt.Errorf("JWT algorithm %q, want RS256", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("JWT signature: %v", err)
	}
	pk := s.keys[header.Kid]
	if pk == nil {
		return fmt.Errorf("Invalid JWT Signature: unknown key id %q", header.Kid)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pk.key, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("Invalid JWT Signature")
	}
	now := time.Now().Unix()
	switch {
	case pk.email != "" && claims.Iss != pk.email:
		return fmt.Errorf("JWT issuer %q does not own key %q", claims.Iss, header.Kid)
	case claims.Aud != s.TokenURL():
		return fmt.Errorf("JWT audience %q, want %q", claims.Aud, s.TokenURL())
	case claims.Scope == "":
		return fmt.Errorf("JWT without scope")
	case claims.Exp < now || claims.Iat > now+300 || claims.Exp-claims.Iat > 3600:
		return fmt.Errorf("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe")
	}
	return nil
}

// authorized reports whether r carries a live token the endpoint issued.
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func tokenError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func randomToken(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}
