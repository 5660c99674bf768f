package billing

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// checkSignedAt refuses a Stripe-Signature dated more than
// SignatureTolerance in the future. stripe-go checks the past only, and a
// delivery signed ahead (a wrong clock, or a signing secret that leaked)
// would otherwise stay replayable until its date plus the tolerance.
// header has been verified: its t= is the one signed.
func checkSignedAt(header string, now time.Time) error {
	var at time.Time
	seen := 0
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		if k != "t" {
			continue
		}
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("the timestamp of the signature is not a number")
		}
		at, seen = time.Unix(secs, 0), seen+1
	}
	switch {
	case seen != 1:
		return errors.New("the signature header needs exactly one timestamp")
	case at.After(now.Add(SignatureTolerance)):
		return errors.New("the signature is dated in the future, beyond the tolerance")
	}
	return nil
}
