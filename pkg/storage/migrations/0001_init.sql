-- 0001_init: users, experiments, memberships, series, measures.
--
-- Portable between MariaDB 10.11 and MySQL 8. Identifiers compare bytewise
-- (utf8mb4_bin, or VARBINARY where trailing spaces must count); human text
-- uses utf8mb4_unicode_ci, which both servers know. Times are DATETIME(6) in
-- UTC (the session time_zone is '+00:00'). CREATE TABLE IF NOT EXISTS keeps
-- a re-run harmless.

-- Users. name and email are PII: nullable so that GDPR erasure can clear
-- them (and set erased_at) while the pseudonymous row stays for the audit
-- trail, referenced by id.
CREATE TABLE IF NOT EXISTS users (
	id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
	firebase_uid VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
	name         VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
	email        VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
	role         ENUM('admin', 'scientist', 'auditor') NOT NULL,
	erased_at    DATETIME(6) NULL,
	created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	updated_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (id),
	UNIQUE KEY users_firebase_uid (firebase_uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Experiments, addressed by slug ([a-z0-9][a-z0-9._-]{0,63}, checked by the
-- store) in messages and URLs, by id in every other table.
CREATE TABLE IF NOT EXISTS experiments (
	id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
	slug        VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	name        VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
	description TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
	created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	updated_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	PRIMARY KEY (id),
	UNIQUE KEY experiments_slug (slug)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Which users (scientists) may read which experiments. The primary key
-- serves "members of an experiment", the user_id key "experiments of a user".
CREATE TABLE IF NOT EXISTS memberships (
	experiment_id BIGINT UNSIGNED NOT NULL,
	user_id       BIGINT UNSIGNED NOT NULL,
	created_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (experiment_id, user_id),
	KEY memberships_user (user_id),
	CONSTRAINT memberships_experiment_fk FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE,
	CONSTRAINT memberships_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- One row per (experiment, sensor): measures carry an 8-byte series id
-- instead of the experiment and a sensor name of up to 128 bytes.
-- sensor is VARBINARY: the contract limits it to 128 bytes (VARCHAR(128)
-- counts characters), and the binary collations that both servers share
-- (utf8mb4_bin) are PAD SPACE, where 'a' and 'a ' would be one key. The
-- store checks it is valid UTF-8. The foreign key is RESTRICT: an
-- experiment that has data is not deleted by accident.
CREATE TABLE IF NOT EXISTS series (
	id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
	experiment_id BIGINT UNSIGNED NOT NULL,
	sensor        VARBINARY(128) NOT NULL,
	created_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
	PRIMARY KEY (id),
	UNIQUE KEY series_experiment_sensor (experiment_id, sensor),
	CONSTRAINT series_experiment_fk FOREIGN KEY (experiment_id) REFERENCES experiments (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

-- Measures. The clustered primary key (series_id, time) is the identity of
-- a measure (experiment, sensor, time), makes re-delivery an update, keeps
-- each series' rows together in time order (inserts append per series,
-- range scans read consecutive pages), and is the only index: nothing else
-- to maintain on the hot insert path. No foreign key on series_id: it would
-- cost a lookup in series and a shared lock per inserted row; the ingest
-- service only writes ids returned by EnsureSeries. ROW_FORMAT=DYNAMIC (the
-- default of both servers, stated here): COMPRESSED saves space but costs
-- CPU on every insert.
CREATE TABLE IF NOT EXISTS measures (
	series_id BIGINT UNSIGNED NOT NULL,
	`time`    DATETIME(6) NOT NULL,
	value     DOUBLE NOT NULL,
	unit      VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
	tags      JSON NULL,
	PRIMARY KEY (series_id, `time`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;
