-- telemon schema, version 19: a device created, rotated or revoked is announced, so that the process keeping the
-- broker's password file (telemon.broker_logins) writes it again at once, whichever process made the change (the
-- dashboard, the hospital API, the command line).
CREATE FUNCTION devices_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('telemon_devices', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER devices_changed AFTER INSERT OR DELETE OR UPDATE OF active, broker_password ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION devices_changed();
