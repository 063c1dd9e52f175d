/**
 * Imported first by every playbook script: the functions log each step at INFO, and a playbook run
 * shows its own report instead. Powertools reads the level once, when the logger is created, so this
 * must run before any function module is loaded. `POWERTOOLS_LOG_LEVEL=INFO` brings the logs back.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

export {};
