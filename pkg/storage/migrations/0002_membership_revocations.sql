-- 0002_membership_revocations: remember which memberships were revoked.
--
-- The API answers a scientist who was removed from an experiment 403 ("your
-- membership was revoked") rather than the 404 of experiments it never
-- belonged to: it knew the experiment already, so saying so reveals
-- nothing, and it tells the person what happened. Adding the membership
-- again deletes the row; the experiment's or the user's deletion cascades.
CREATE TABLE IF NOT EXISTS membership_revocations (
	experiment_id BIGINT UNSIGNED NOT NULL,
	user_id       BIGINT UNSIGNED NOT NULL,
	revoked_at    DATETIME(6) NOT NULL,
	PRIMARY KEY (experiment_id, user_id),
	KEY membership_revocations_user (user_id),
	CONSTRAINT membership_revocations_experiment_fk FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE,
	CONSTRAINT membership_revocations_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
