"""Walk-forward evaluation of every stage against baselines: folds → data → ridge_forecaster
and trading_costs → scoring (bootstrap intervals) → walk_forward (the run) → store."""
