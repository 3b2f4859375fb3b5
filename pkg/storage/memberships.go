package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"
)

// errRowIsReferenced is ER_ROW_IS_REFERENCED_2: a RESTRICT foreign key.
const errRowIsReferenced = 1451

// ExperimentByID returns the experiment with the id, or ErrNotFound.
func (s *Store) ExperimentByID(ctx context.Context, id int64) (Experiment, error) {
	e, err := scanExperiment(s.db.QueryRowContext(ctx,
		"SELECT "+experimentColumns+" FROM experiments WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Experiment{}, fmt.Errorf("experiment %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Experiment{}, fmt.Errorf("experiment %d: %w", id, err)
	}
	return e, nil
}

// ExperimentUpdate lists the fields UpdateExperiment changes; nil fields are
// kept. The slug never changes: messages and URLs refer to it.
type ExperimentUpdate struct {
	Name        *string
	Description *string
}

// UpdateExperiment changes the given fields and returns the experiment. An
// unknown id is ErrNotFound, a name over 200 characters ErrInvalid.
func (s *Store) UpdateExperiment(ctx context.Context, id int64, up ExperimentUpdate) (Experiment, error) {
	var out Experiment
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		e, err := scanExperiment(tx.QueryRowContext(ctx,
			"SELECT "+experimentColumns+" FROM experiments WHERE id = ? FOR UPDATE", id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("update experiment %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("update experiment %d: %w", id, err)
		}
		if up.Name != nil {
			e.Name = *up.Name
		}
		if up.Description != nil {
			e.Description = *up.Description
		}
		if !utf8.ValidString(e.Name) || utf8.RuneCountInString(e.Name) > 200 {
			return fmt.Errorf("experiment name must be valid UTF-8 of at most 200 characters: %w", ErrInvalid)
		}
		if !utf8.ValidString(e.Description) || len(e.Description) > 65535 {
			return fmt.Errorf("experiment description must be valid UTF-8 of at most 65535 bytes: %w", ErrInvalid)
		}
		e.UpdatedAt = s.timestamp()
		if _, err := tx.ExecContext(ctx, "UPDATE experiments SET name = ?, description = ?, updated_at = ? WHERE id = ?",
			e.Name, e.Description, e.UpdatedAt, id); err != nil {
			return fmt.Errorf("update experiment %d: %w", id, err)
		}
		out = e
		return nil
	})
	return out, err
}

// DeleteExperiment deletes an experiment and its memberships. An unknown id
// is ErrNotFound; an experiment that has series (hence possibly measures) is
// ErrConflict: its data must be deleted first.
func (s *Store) DeleteExperiment(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM experiments WHERE id = ?", id)
	if mysqlErrno(err) == errRowIsReferenced {
		return fmt.Errorf("delete experiment %d: it has series and measures: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete experiment %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete experiment %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete experiment %d: %w", id, ErrNotFound)
	}
	return nil
}

// checkPair returns ErrNotFound naming what is missing: the experiment, or
// the user (an erased user counts as missing).
func (s *Store) checkPair(ctx context.Context, q rowQuerier, experimentID, userID int64) error {
	var n int
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM experiments WHERE id = ?", experimentID).Scan(&n)
	if err != nil {
		return fmt.Errorf("experiment %d: %w", experimentID, err)
	}
	if n == 0 {
		return fmt.Errorf("experiment %d: %w", experimentID, ErrNotFound)
	}
	err = q.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id = ? AND erased_at IS NULL", userID).Scan(&n)
	if err != nil {
		return fmt.Errorf("user %d: %w", userID, err)
	}
	if n == 0 {
		return fmt.Errorf("user %d: %w", userID, ErrNotFound)
	}
	return nil
}

// AddMembership makes the user a member of the experiment. Adding an
// existing membership changes nothing and is not an error. An unknown
// experiment or an unknown or erased user is ErrNotFound.
func (s *Store) AddMembership(ctx context.Context, experimentID, userID int64) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		// Lock the live user row, so that a concurrent erasure waits for
		// this transaction (and then deletes the membership) or wins (and
		// this finds no live user).
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE id = ? AND erased_at IS NULL FOR UPDATE", userID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return s.checkPair(ctx, tx, experimentID, userID)
		}
		if err != nil {
			return fmt.Errorf("add membership: %w", err)
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO memberships (experiment_id, user_id, created_at) VALUES (?, ?, ?) "+
				"ON DUPLICATE KEY UPDATE experiment_id = experiment_id",
			experimentID, userID, s.timestamp())
		if mysqlErrno(err) == errNoReferencedRow {
			return fmt.Errorf("add membership: experiment %d: %w", experimentID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("add membership: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM membership_revocations WHERE experiment_id = ? AND user_id = ?", experimentID, userID); err != nil {
			return fmt.Errorf("add membership: clear revocation: %w", err)
		}
		return nil
	})
}

// RemoveMembership removes the user from the experiment and records the
// revocation (see WasRevoked). Removing a membership that does not exist is
// not an error when both exist; an unknown experiment or user is
// ErrNotFound.
func (s *Store) RemoveMembership(ctx context.Context, experimentID, userID int64) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM memberships WHERE experiment_id = ? AND user_id = ?", experimentID, userID)
		if err != nil {
			return fmt.Errorf("remove membership: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("remove membership: %w", err)
		}
		if n == 0 {
			return s.checkPair(ctx, tx, experimentID, userID)
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO membership_revocations (experiment_id, user_id, revoked_at) VALUES (?, ?, ?) "+
				"ON DUPLICATE KEY UPDATE revoked_at = VALUES(revoked_at)",
			experimentID, userID, s.timestamp())
		if err != nil {
			return fmt.Errorf("remove membership: record revocation: %w", err)
		}
		return nil
	})
}

// WasRevoked reports whether the user's membership of the experiment was
// removed and not given back since.
func (s *Store) WasRevoked(ctx context.Context, experimentID, userID int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM membership_revocations WHERE experiment_id = ? AND user_id = ?", experimentID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("was revoked: %w", err)
	}
	return n > 0, nil
}

// IsMember reports whether the user is a member of the experiment.
func (s *Store) IsMember(ctx context.Context, experimentID, userID int64) (bool, error) {
	var n int
	err := s.lookup(ctx,
		"SELECT COUNT(*) FROM memberships WHERE experiment_id = ? AND user_id = ?", experimentID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("is member: %w", err)
	}
	return n > 0, nil
}

// ListMembers returns the users of an experiment ordered by id. An unknown
// experiment is ErrNotFound.
func (s *Store) ListMembers(ctx context.Context, experimentID int64) ([]User, error) {
	if _, err := s.ExperimentByID(ctx, experimentID); err != nil {
		return nil, err
	}
	return s.queryUsers(ctx, "list members",
		"SELECT u.id, u.firebase_uid, u.name, u.email, u.role, u.erased_at, u.created_at, u.updated_at "+
			"FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.experiment_id = ? ORDER BY u.id", experimentID)
}

// ListUserExperiments returns the experiments a user is a member of,
// ordered by slug. An unknown user is ErrNotFound.
func (s *Store) ListUserExperiments(ctx context.Context, userID int64) ([]Experiment, error) {
	if _, err := s.UserByID(ctx, userID); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT e.id, e.slug, e.name, e.description, e.created_at, e.updated_at "+
			"FROM memberships m JOIN experiments e ON e.id = m.experiment_id WHERE m.user_id = ? ORDER BY e.slug", userID)
	if err != nil {
		return nil, fmt.Errorf("list user experiments: %w", err)
	}
	defer rows.Close()
	out := []Experiment{}
	for rows.Next() {
		e, err := scanExperiment(rows)
		if err != nil {
			return nil, fmt.Errorf("list user experiments: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list user experiments: %w", err)
	}
	return out, nil
}
