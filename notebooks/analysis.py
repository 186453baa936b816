# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Analysing a supernet run
#
# Point `RUN_DIR` at a `supernet-train` run directory (it holds `.hydra/`, `logs/metrics.csv` and
# `checkpoints/last.ckpt`); by default the newest run, which `supernet-train` links as
# `outputs/train/latest`. Tables written by `supernet-evaluate` / `supernet-search` inside it are
# picked up; `RANKING` may name the `benchmarks/results/ranking_<task>.json` of `benchmarks/ranking.py`.
# Relative paths are read from the repository root, whether the notebook runs there or in
# `notebooks/` (where Jupyter starts it). All the logic lives in `supernet.analysis`, so
# `supernet-report RUN_DIR` draws the same figures.

# %% tags=["parameters"]
RUN_DIR = "outputs/train/latest"
RANKING = "benchmarks/results/ranking_cluttered.json"

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from supernet import analysis

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()  # the commands write from the root
RUN_DIR, RANKING = ROOT / RUN_DIR, ROOT / RANKING  # an absolute path stays as it is
run = analysis.load_run(RUN_DIR)
print("space:", run.meta["space"]["name"] if run.meta else "?", "| tables:", sorted(run.tables))

# %% [markdown]
# ## Accuracy vs multiply-adds of the evaluated children
# Every child in the `supernet-evaluate` / `supernet-search` tables of the run (else its validation
# children). The red line is the Pareto front; stars mark the space's max and min children (or the
# largest and smallest evaluated, when those two were not).

# %%
children = run.children_table()
analysis.plot_accuracy_vs_cost(children)
plt.show()
children.head(10)

# %% [markdown]
# The same against measured latency, when `supernet-evaluate` measured it.

# %%
if "latency_ms" in children.columns and children["latency_ms"].notna().any():
    analysis.plot_accuracy_vs_cost(children, cost="latency_ms")
    plt.show()
else:
    print("no latency column: run supernet-evaluate to measure it")

# %% [markdown]
# ## Training curves of the validation children

# %%
if run.metrics is not None:
    analysis.plot_training_curves(run.metrics)
    plt.show()

# %% [markdown]
# ## PA&DA: path distributions over epochs and data importance
# Present when the run used `sampler=sandwich_pada` / `data_sampler=pada`.

# %%
if run.metrics is not None and analysis.pada_history(run.metrics):
    analysis.plot_pada_heatmaps(run.metrics)
    plt.show()
else:
    print("this run did not use PA&DA path sampling")
if run.meta and "data_sampler" in run.meta:
    analysis.plot_data_importance(run.meta)
    plt.show()

# %% [markdown]
# ## Ranking consistency: supernet vs stand-alone accuracy

# %%
if RANKING.exists():
    analysis.plot_ranking(RANKING)
    plt.show()
else:
    print(f"{RANKING} not found: run benchmarks/ranking.py")
