"""Risk oversight: limits under four eyes, pre-trade checks, kill switches, the exception
console. Models live in oversight.risk.models (the oversight app); writes go through
oversight.risk.services, reads through oversight.risk.selectors."""
