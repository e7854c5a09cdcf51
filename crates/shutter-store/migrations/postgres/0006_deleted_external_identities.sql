-- External identities (issuer + subject) of deleted accounts (PostgreSQL). A deleted account
-- stays deleted: the identity provider's next token for the same subject is refused instead
-- of creating the account again.
CREATE TABLE deleted_external_identities (
    ext_issuer  TEXT NOT NULL,
    ext_subject TEXT NOT NULL,
    PRIMARY KEY (ext_issuer, ext_subject)
);
