package multitenant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The CLI's account commands: operators of the web UI (the first one is
// made here, before anyone can sign in), and invitations for customers'
// users.

func accountCommands(cmd func(string, string, cobra.PositionalArgs, func(context.Context, *cobra.Command, *cliEnv, []string) error) *cobra.Command) (admins []*cobra.Command, invite *cobra.Command) {
	passwordFlags := func(c *cobra.Command) {
		c.Flags().String("password", "", "The password (visible to other users of this machine: prefer --password-stdin)")
		c.Flags().Bool("password-stdin", false, "Read the password from the first line of standard input")
	}
	add := cmd("add", "Adds an operator of the web UI", cobra.NoArgs, cmdAdminsAdd)
	add.Flags().String("email", "", "Email address, to sign in with (required)")
	add.Flags().String("name", "", "Name")
	passwordFlags(add)
	ls := cmd("ls", "Lists operators", cobra.NoArgs, cmdAdminsLs)
	rm := cmd("rm <email>", "Removes an operator (not the last one) and ends its sessions", cobra.ExactArgs(1), cmdAdminsRm)
	passwd := cmd("passwd <email>", "Sets a user's password and ends its sessions everywhere", cobra.ExactArgs(1), cmdAdminsPasswd)
	passwordFlags(passwd)

	invite = cmd("invite <customer>", "Makes a one-time link for a user of a customer (id or email) to set a password", cobra.ExactArgs(1), cmdCustomersInvite)
	invite.Flags().String("email", "", "The user's email (default: the customer's)")
	invite.Flags().String("name", "", "The user's name")
	invite.Flags().String("admin-url", "", "The web UI's address, e.g. https://admin.example.com, to print the whole link")
	return []*cobra.Command{add, ls, rm, passwd}, invite
}

// password reads the password of --password or --password-stdin.
func password(cmd *cobra.Command) (string, error) {
	given := flag(cmd, "password")
	if !boolFlag(cmd, "password-stdin") {
		if given == "" {
			return "", errors.New("give the password with --password-stdin (or --password)")
		}
		return given, nil
	}
	if given != "" {
		return "", errors.New("give --password or --password-stdin, not both")
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func cmdAdminsAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	pw, err := password(cmd)
	if err != nil {
		return err
	}
	u, err := env.svc.CreateOperator(ctx, cliActor(), flag(cmd, "email"), flag(cmd, "name"), pw)
	if err != nil {
		return err
	}
	return emit(cmd, env, u, func() { fmt.Fprintf(env.out, "added operator %s\n", u.Email) })
}

func cmdAdminsLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.ListUsers(ctx, tenants.UserFilter{Operators: true})
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "EMAIL\tNAME\tTOTP\tLAST LOGIN\tCREATED")
		for _, u := range list {
			totp := "off"
			if u.TOTP {
				totp = "on"
			}
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\n", u.Email, dash(u.Name), totp, when(u.LastLoginAt), when(&u.CreatedAt))
		}
	})
}

func cmdAdminsRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	u, err := env.svc.GetUser(ctx, args[0])
	if err != nil {
		return err
	}
	if !u.Operator() {
		return fmt.Errorf("%s is a user of customer %s, not an operator", u.Email, u.CustomerEmail)
	}
	if err := env.svc.DeleteUser(ctx, cliActor(), u.ID); err != nil {
		return err
	}
	fmt.Fprintf(env.out, "removed operator %s\n", u.Email)
	return nil
}

func cmdAdminsPasswd(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	pw, err := password(cmd)
	if err != nil {
		return err
	}
	if err := env.svc.SetPassword(ctx, cliActor(), args[0], pw); err != nil {
		return err
	}
	fmt.Fprintf(env.out, "set the password of %s and signed it out everywhere\n", args[0])
	return nil
}

func cmdCustomersInvite(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	inv, err := env.svc.InviteCustomerUser(ctx, cliActor(), args[0], flag(cmd, "email"), flag(cmd, "name"))
	if err != nil {
		return err
	}
	link := ""
	if base := strings.TrimRight(flag(cmd, "admin-url"), "/"); base != "" {
		link = base + inv.Path
	}
	out := struct {
		*manage.Invitation
		URL string `json:"url,omitempty"`
	}{inv, link}
	return emit(cmd, env, out, func() {
		fmt.Fprintf(env.out, "invited %s (customer %s); the link works once, until %s:\n", inv.User.Email, inv.User.CustomerEmail, when(&inv.ExpiresAt))
		if link != "" {
			fmt.Fprintln(env.out, link)
		} else {
			fmt.Fprintln(env.out, inv.Path)
			fmt.Fprintln(env.out, "prefix it with the web UI's address (the admin host), e.g. https://admin.example.com"+inv.Path)
		}
	})
}
