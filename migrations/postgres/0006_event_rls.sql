-- Row-level security on the event tables and the tenant registry: every table with `org_id` has
-- the second wall. `crm_tenant` admits the tenant a connection is set to (`crm.org_id`, as for
-- model tables); `crm_platform` admits every row only inside a transaction that set
-- `crm.platform` to 'on' transaction-locally: the workers' cross-tenant reads and the
-- deliverer's queue (crm-orm's `CrossTenant`), never a request connection. Policies are
-- permissive (OR-ed); with neither setting a statement sees nothing.
ALTER TABLE crm_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_outbox USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_platform ON crm_outbox USING (current_setting('crm.platform', true) = 'on')
    WITH CHECK (current_setting('crm.platform', true) = 'on');

ALTER TABLE crm_event_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_event_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_event_cursors USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_platform ON crm_event_cursors USING (current_setting('crm.platform', true) = 'on')
    WITH CHECK (current_setting('crm.platform', true) = 'on');

ALTER TABLE crm_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_deliveries USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_platform ON crm_deliveries USING (current_setting('crm.platform', true) = 'on')
    WITH CHECK (current_setting('crm.platform', true) = 'on');

ALTER TABLE crm_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_tenants USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_platform ON crm_tenants USING (current_setting('crm.platform', true) = 'on')
    WITH CHECK (current_setting('crm.platform', true) = 'on');
