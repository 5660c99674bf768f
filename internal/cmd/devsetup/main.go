// Command devsetup prepares the database and Docker engine that `make run`
// serves: it builds a small demo site image locally (no registry needed),
// applies migrations, imports the built-in template catalog and registers
// a demo customer, template and site, so that http://demo.localhost:8080/
// shows a lazily started container, and an operator of the web UI
// (admin@localhost, its password printed) for http://admin.localhost:8080/. It is idempotent: what exists is left
// as it is.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

const (
	// devAdminEmail is the operator make run creates, once, with a random
	// password kept in devAdminPasswordFile.
	devAdminEmail        = "admin@localhost"
	devAdminPasswordFile = ".data/dev-admin-password"

	demoImage = "caddy-multitenant-demo:latest"
	actor     = "make-run"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devsetup:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	fmt.Println("devsetup: building the demo site image", demoImage)
	if err := testimage.BuildImage(ctx, demoImage); err != nil {
		return err
	}

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = tenants.DefaultSchema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := tenants.Migrate(ctx, pool, tenants.DefaultSchema); err != nil {
		return err
	}
	store := tenants.NewStore(pool, tenants.Options{BaseDomain: "localhost", Reserved: []string{"admin", "www", "api"}})
	svc := manage.New(manage.Config{Store: store})
	imported, err := svc.ImportTemplates(ctx, actor, nil)
	if err != nil {
		return fmt.Errorf("importing the template catalog: %w", err)
	}
	if n := len(imported.Created); n > 0 {
		fmt.Printf("devsetup: imported %d templates from the built-in catalog\n", n)
	}

	tpl, err := store.GetTemplateBySlug(ctx, "demo")
	if errors.Is(err, tenants.ErrNotFound) {
		tpl = &tenants.Template{Slug: "demo", Name: "Demo site", Description: "A tiny Go web server, built locally by make run.",
			Image: demoImage, Port: 8080, Env: map[string]string{"DATA_DIR": "/data"}, DataPath: "/data",
			HealthPath: "/health", MemoryBytes: 64 << 20, PidsLimit: 64}
		err = store.CreateTemplate(ctx, actor, tpl)
	}
	if err != nil {
		return fmt.Errorf("demo template: %w", err)
	}

	site, err := store.GetSiteBySubdomain(ctx, "demo")
	if errors.Is(err, tenants.ErrNotFound) {
		customer := &tenants.Customer{Email: "demo@example.org", Name: "Demo customer"}
		if err := store.CreateCustomer(ctx, actor, customer); err != nil {
			return fmt.Errorf("demo customer: %w", err)
		}
		site = &tenants.Site{CustomerID: customer.ID, TemplateID: tpl.ID, Subdomain: "demo", Env: map[string]string{"SITE_NAME": "demo"}}
		err = store.CreateSite(ctx, actor, site)
	}
	if err != nil {
		return fmt.Errorf("demo site: %w", err)
	}

	// An admin API key for the dev instance, made once; its token is kept
	// next to the dev database since it cannot be shown again.
	keyFile := filepath.Join(".data", "dev-api-key")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		token, _, err := store.CreateAPIKey(ctx, actor, "make run", tenants.ScopeWrite)
		if err != nil {
			return fmt.Errorf("dev api key: %w", err)
		}
		if err := os.MkdirAll(".data", 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(keyFile, []byte(token+"\n"), 0o600); err != nil {
			return err
		}
	}
	token, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	password, err := devAdmin(ctx, svc)
	if err != nil {
		return err
	}
	fmt.Printf("devsetup: demo site ready: curl http://demo.localhost:8080/\n")
	fmt.Printf("devsetup: web UI:          http://admin.localhost:8080/  sign in as %s, password %s\n", devAdminEmail, password)
	fmt.Printf("devsetup: admin API:       curl -H 'Authorization: Bearer %s' http://admin.localhost:8080/api/v1/\n", string(token[:len(token)-1]))
	return nil
}

// devAdmin makes the dev instance's operator on first run, with a random
// password written next to the dev database (it cannot be read back from
// its hash), and returns that password. A user made otherwise (the file
// gone) keeps its password: the message says how to set one.
func devAdmin(ctx context.Context, svc *manage.Service) (string, error) {
	if data, err := os.ReadFile(devAdminPasswordFile); err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if _, err := svc.GetUser(ctx, devAdminEmail); err == nil {
		return "(unknown: set one with: bin/caddy tenants admins passwd " + devAdminEmail + " --password-stdin)", nil
	} else if !manage.IsCode(err, manage.NotFound) {
		return "", fmt.Errorf("dev admin user: %w", err)
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	password := base64.RawURLEncoding.EncodeToString(b)
	if _, err := svc.CreateOperator(ctx, actor, devAdminEmail, "Dev admin", password); err != nil {
		return "", fmt.Errorf("dev admin user: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(devAdminPasswordFile), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(devAdminPasswordFile, []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	return password, nil
}
