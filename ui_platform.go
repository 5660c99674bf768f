package multitenant

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/agistaffers/caddy-multitenant/ui"
)

// uiPlatform is what the web UI asks of the running server: the
// configuration as it was loaded (secrets masked), the health of the
// database, engine and listener, and the certificates in storage. It
// holds the platform and values captured at Provision, never the *App,
// which a reload cleans up.
type uiPlatform struct {
	p          *platform
	storage    certmagic.Storage
	settings   any
	maxRunning int
}

func newUIPlatform(app *App, storage certmagic.Storage) (*uiPlatform, error) {
	raw, err := json.Marshal(app)
	if err != nil {
		return nil, err
	}
	var settings any
	if err := json.Unmarshal(raw, &settings); err != nil {
		return nil, err
	}
	return &uiPlatform{p: app.platform, storage: storage, settings: maskSecrets("", settings), maxRunning: app.MaxRunning}, nil
}

func (u *uiPlatform) Settings() any   { return u.settings }
func (u *uiPlatform) MaxRunning() int { return u.maxRunning }

// Health checks the database (a round trip), the listener that keeps
// every node's cache fresh, and the Docker engine.
func (u *uiPlatform) Health(ctx context.Context) []ui.Check {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	db := ui.Check{Name: "database", OK: true, Detail: "migrated and answering"}
	start := time.Now()
	if err := u.p.pool.Ping(ctx); err != nil {
		db.OK, db.Detail = false, "not answering: "+err.Error()
	} else if !u.p.databaseReady.Load() {
		db.OK, db.Detail = false, "answering, but not migrated yet"
	} else {
		db.Detail = fmt.Sprintf("migrated, answered in %s", time.Since(start).Round(time.Millisecond))
	}
	listener := ui.Check{Name: "listener", OK: u.p.resolver != nil && u.p.resolver.Connected(),
		Detail: "LISTEN tenants_changed: connected, changes reach this node's cache at once"}
	if !listener.OK {
		listener.Detail = "not connected: changes reach this node's cache only when entries expire"
	}
	engine := ui.Check{Name: "engine", OK: false, Detail: "this server runs no containers"}
	if u.p.prov != nil {
		if _, err := u.p.runtime.HostLimits(ctx); err != nil {
			engine.Detail = "not answering: " + err.Error()
		} else if !u.p.engineReady.Load() {
			engine.Detail = "answering, containers not adopted yet"
		} else {
			engine.OK, engine.Detail = true, fmt.Sprintf("answering; %d site container(s) running here", u.p.prov.Running())
		}
	}
	return []ui.Check{db, listener, engine}
}

// Certificates lists the certificates certmagic keeps in storage: every
// certificates/<issuer>/<host>/<host>.crt.
func (u *uiPlatform) Certificates(ctx context.Context) ([]ui.Certificate, error) {
	if u.storage == nil {
		return nil, nil
	}
	keys, err := u.storage.List(ctx, "certificates", true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // none issued yet: storage has no such folder
	}
	if err != nil {
		return nil, fmt.Errorf("listing certificates: %w", err)
	}
	var out []ui.Certificate
	for _, key := range keys {
		if !strings.HasSuffix(key, ".crt") {
			continue
		}
		data, err := u.storage.Load(ctx, key)
		if err != nil {
			continue // removed meanwhile
		}
		block, _ := pem.Decode(data)
		if block == nil {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		host := strings.TrimSuffix(path.Base(key), ".crt")
		if len(cert.DNSNames) > 0 {
			host = cert.DNSNames[0]
		}
		issuer := cert.Issuer.CommonName
		if issuer == "" {
			issuer = path.Base(path.Dir(path.Dir(key)))
		}
		out = append(out, ui.Certificate{Host: host, Issuer: issuer, NotAfter: cert.NotAfter})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NotAfter.Before(out[j].NotAfter) })
	return out, nil
}

// maskSecrets replaces what looks like a secret in a decoded JSON config:
// values of keys naming a secret, a password or a token, and the password
// of a database URL.
func maskSecrets(key string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			t[k] = maskSecrets(k, val)
		}
		return t
	case []any:
		for i, val := range t {
			t[i] = maskSecrets(key, val)
		}
		return t
	case string:
		lk := strings.ToLower(key)
		if t != "" && (strings.Contains(lk, "secret") || strings.Contains(lk, "password") || strings.Contains(lk, "token")) {
			return "•••• (set)"
		}
		if u, err := url.Parse(t); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				return u.String()
			}
		}
		if strings.Contains(t, "password=") {
			fields := strings.Fields(t)
			for i, f := range fields {
				if strings.HasPrefix(f, "password=") {
					fields[i] = "password=xxxxx"
				}
			}
			return strings.Join(fields, " ")
		}
	}
	return v
}
