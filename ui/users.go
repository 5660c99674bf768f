package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The admins pages: operators (add, remove, new password, sign out
// everywhere), and every customer's users for reference.

func (u *UI) routesUsers() {
	u.op("GET /users", u.usersList)
	u.op("POST /users", u.userCreate)
	u.op("GET /users/{ref}", u.userDetail)
	u.op("POST /users/{ref}/password", u.userPassword)
	u.op("POST /users/{ref}/logout", u.userLogout)
	u.op("POST /users/{ref}/delete", u.userDelete)
}

type usersData struct {
	Operators, CustomerUsers []manage.User
}

func (u *UI) usersView(r *http.Request, req *request) (*view, error) {
	all, err := u.svc.ListUsers(r.Context(), tenants.UserFilter{})
	if err != nil {
		return nil, err
	}
	var d usersData
	for _, usr := range all {
		if usr.Operator() {
			d.Operators = append(d.Operators, usr)
		} else {
			d.CustomerUsers = append(d.CustomerUsers, usr)
		}
	}
	return u.view(r, req, "Admins", "users", d), nil
}

func (u *UI) usersList(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.usersView(r, req)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "users", v)
	return nil
}

func (u *UI) userCreate(w http.ResponseWriter, r *http.Request, req *request) error {
	email := strings.TrimSpace(r.PostFormValue("email"))
	usr, err := u.svc.CreateOperator(r.Context(), actor(req), email, strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password"))
	if err != nil {
		v, verr := u.usersView(r, req)
		if verr != nil {
			return verr
		}
		return u.formFailed(w, r, v, "users", err)
	}
	return u.redirect(w, r, req, "/users", "Operator "+usr.Email+" added.")
}

type userData struct {
	Account  *manage.User
	Sessions int
	Self     bool
}

func (u *UI) userView(r *http.Request, req *request) (*view, error) {
	usr, err := u.svc.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	n, err := u.store.CountUserSessions(r.Context(), usr.ID)
	if err != nil {
		return nil, manage.Wrap(err)
	}
	return u.view(r, req, "User "+usr.Email, "users", userData{Account: usr, Sessions: n, Self: usr.ID == req.User.ID}), nil
}

func (u *UI) userDetail(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.userView(r, req)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "user", v)
	return nil
}

func (u *UI) userPassword(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.userView(r, req)
	if err != nil {
		return err
	}
	usr := v.Data.(userData).Account
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		v.Errors["confirm"] = "The two passwords differ."
		u.render(w, http.StatusUnprocessableEntity, "user", v)
		return nil
	}
	if err := u.svc.SetPassword(r.Context(), actor(req), usr.ID, r.PostFormValue("password")); err != nil {
		return u.formFailed(w, r, v, "user", err)
	}
	if usr.ID == req.User.ID {
		// A new password ends every session, this one too.
		http.SetCookie(w, sessionCookie(r, "", -1))
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	return u.redirect(w, r, req, "/users/"+url.PathEscape(usr.ID), "New password set for "+usr.Email+"; they are signed out everywhere.")
}

func (u *UI) userLogout(w http.ResponseWriter, r *http.Request, req *request) error {
	usr, err := u.svc.GetUser(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if _, err := u.svc.LogoutEverywhere(r.Context(), actor(req), usr.ID); err != nil {
		return err
	}
	if usr.ID == req.User.ID {
		http.SetCookie(w, sessionCookie(r, "", -1))
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	return u.redirect(w, r, req, "/users/"+url.PathEscape(usr.ID), usr.Email+" is signed out everywhere.")
}

func (u *UI) userDelete(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.userView(r, req)
	if err != nil {
		return err
	}
	usr := v.Data.(userData).Account
	if err := u.svc.DeleteUser(r.Context(), actor(req), usr.ID); err != nil {
		var me *manage.Error
		if !errors.As(err, &me) || me.Code != manage.Conflict {
			return err
		}
		// The last operator stays: say why on its page.
		v.Error = me.Message
		u.render(w, statusOf(err), "user", v)
		return nil
	}
	if usr.ID == req.User.ID {
		http.SetCookie(w, sessionCookie(r, "", -1))
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	target := "/users"
	if !usr.Operator() && usr.CustomerID != nil {
		target = "/customers/" + url.PathEscape(*usr.CustomerID)
	}
	return u.redirect(w, r, req, target, "User "+usr.Email+" removed.")
}
