-- Row-level security that costs one comparison per row: one policy per command (a read is checked
-- against `crm_read` alone), the settings read once per statement (an init plan), and
-- `crm.read_orgs` holding the caller's tenant as well as the descendants a parent role reads.
-- Model tables get the same policies from the engine (`schema::tenant_policies`).
DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['crm_history', 'crm_stage_transitions', 'crm_records'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS crm_tenant ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS crm_tenant_read ON %I', t);
        EXECUTE format('CREATE POLICY crm_read ON %I FOR SELECT USING (org_id = ANY ((SELECT string_to_array(current_setting(''crm.read_orgs'', true), '',''))::text[]))', t);
        EXECUTE format('CREATE POLICY crm_insert ON %I FOR INSERT WITH CHECK (org_id = (SELECT current_setting(''crm.org_id'', true)))', t);
        EXECUTE format('CREATE POLICY crm_update ON %I FOR UPDATE USING (org_id = (SELECT current_setting(''crm.org_id'', true))) WITH CHECK (org_id = (SELECT current_setting(''crm.org_id'', true)))', t);
        EXECUTE format('CREATE POLICY crm_delete ON %I FOR DELETE USING (org_id = (SELECT current_setting(''crm.org_id'', true)))', t);
    END LOOP;
    -- Tables only ever read by their own tenant keep one policy for every command.
    FOREACH t IN ARRAY ARRAY['crm_audit', 'crm_metadata'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS crm_tenant ON %I', t);
        EXECUTE format('CREATE POLICY crm_tenant ON %I USING (org_id = (SELECT current_setting(''crm.org_id'', true))) WITH CHECK (org_id = (SELECT current_setting(''crm.org_id'', true)))', t);
    END LOOP;
END $$;
