package tenants

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// Migrations are forward-only and additive, so that the previous binary
// keeps serving on a migrated schema (the README's way back from an
// upgrade): no migration may drop or rename a table or a column, or move
// a table to another schema. This fails on any that does.
func TestMigrationsAreAdditive(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	for _, name := range files {
		sql, err := fs.ReadFile(migrationFiles, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range destructive(string(sql)) {
			t.Errorf("%s: %s\nMigrations must be additive (add tables, columns, indexes; never drop or rename a table or column): the previous release must keep working on the migrated schema. Add a new column or table instead, and stop using the old one.", name, v)
		}
	}
}

// The checker itself: each of these must be caught, and none of the
// additive ones.
func TestDestructiveStatements(t *testing.T) {
	t.Parallel()
	bad := []string{
		"DROP TABLE sites;",
		"drop table if exists tenants.sites cascade;",
		"ALTER TABLE sites DROP COLUMN env;",
		"ALTER TABLE sites DROP env;",
		"ALTER TABLE ONLY sites ADD COLUMN x int, DROP COLUMN IF EXISTS y;",
		"ALTER TABLE sites RENAME TO websites;",
		"ALTER TABLE sites RENAME COLUMN env TO environment;",
		"ALTER TABLE sites RENAME env TO environment;",
		"ALTER TABLE sites SET SCHEMA archive;",
		"DROP SCHEMA tenants CASCADE;",
		"-- a comment\nALTER TABLE \"sites\"\n\tDROP\n\tCOLUMN \"env\";",
	}
	for _, sql := range bad {
		if len(destructive(sql)) == 0 {
			t.Errorf("not caught: %s", sql)
		}
	}
	good := []string{
		"CREATE TABLE t (id int);",
		"ALTER TABLE sites ADD COLUMN x int NOT NULL DEFAULT 0;",
		"ALTER TABLE sites DROP CONSTRAINT sites_x_check, ADD CONSTRAINT sites_x_check CHECK (x > 0);",
		"ALTER TABLE sites ALTER COLUMN x DROP DEFAULT, ALTER COLUMN x DROP NOT NULL;",
		"ALTER TABLE sites RENAME CONSTRAINT a TO b;",
		"DROP INDEX sites_x_idx; DROP TRIGGER t ON sites; DROP FUNCTION f();",
		"-- DROP TABLE sites; in a comment\nSELECT 'DROP TABLE sites';",
		"CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'x'; END $$;",
	}
	for _, sql := range good {
		if v := destructive(sql); len(v) != 0 {
			t.Errorf("additive statement refused: %s: %v", sql, v)
		}
	}
}

var (
	lineComment  = regexp.MustCompile(`--[^\n]*`)
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	dollarQuoted = regexp.MustCompile(`(?s)\$([A-Za-z_]*)\$.*?\$([A-Za-z_]*)\$`)
	quoted       = regexp.MustCompile(`'(?:[^']|'')*'`)
	spaces       = regexp.MustCompile(`\s+`)
	dropObject   = regexp.MustCompile(`^DROP (TABLE|SCHEMA)\b`)
	alterTable   = regexp.MustCompile(`^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(\S+) (.*)$`)
)

// destructive returns the statements of sql that drop or rename a table
// or column. Comments, string literals and dollar-quoted bodies are
// ignored: only the migration's own DDL counts.
func destructive(sql string) []string {
	sql = blockComment.ReplaceAllString(sql, " ")
	sql = lineComment.ReplaceAllString(sql, " ")
	sql = dollarQuoted.ReplaceAllString(sql, "''")
	sql = quoted.ReplaceAllString(sql, "''")
	var found []string
	for _, stmt := range strings.Split(sql, ";") {
		stmt = strings.TrimSpace(spaces.ReplaceAllString(strings.ToUpper(stmt), " "))
		if m := dropObject.FindStringSubmatch(stmt); m != nil {
			found = append(found, "drops a "+strings.ToLower(m[1])+": "+stmt)
			continue
		}
		m := alterTable.FindStringSubmatch(stmt)
		if m == nil {
			continue
		}
		for _, action := range splitTopLevel(m[2]) {
			words := strings.Fields(action)
			switch {
			case len(words) == 0:
			case words[0] == "DROP" && (len(words) < 2 || words[1] != "CONSTRAINT"):
				found = append(found, "drops a column of "+m[1]+": "+action)
			case words[0] == "RENAME" && (len(words) < 2 || words[1] != "CONSTRAINT"):
				found = append(found, "renames table "+m[1]+" or a column of it: "+action)
			case words[0] == "SET" && len(words) > 1 && words[1] == "SCHEMA":
				found = append(found, "moves table "+m[1]+" to another schema: "+action)
			}
		}
	}
	return found
}

// splitTopLevel splits an ALTER TABLE's actions at the commas outside
// parentheses.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
