"""Default config of compare_optimizers: the notes' optimizers on MNIST-1D.

Command (from the repository root; no download, MNIST-1D is generated locally)::

    python -m experiments.compare_optimizers.main --workdir=runs/compare_optimizers

Expected runtime on the reference machine (2-core CPU): under 2 minutes. Measured:
82 s of CPU time (user) for the default run, compilation and plots included (14
compiled programs, 7 optimizers x 2 models, each reused over the 3 seeds); 4 min 7 s
wall while the machine was shared with other jobs (the run got 34% of the CPU).

Expected result (3 seeds, mean ± std; val = last 500 training examples, test = the
MNIST-1D test split; measured with these defaults):

* softmax regression: final train loss 1.585 (L-BFGS, the convex optimum) to 1.616
  (Adam); test accuracy 0.31-0.34 for every optimizer (not linearly separable); every
  optimizer reaches the 0.30 val target, L-BFGS in 10 iterations, SGD in 183 ± 47
  steps, Adam last (517 ± 85 steps).
* 100-100 MLP: train loss 0.0002 (L-BFGS) to 0.107 (SGD); test accuracy 0.59-0.62;
  every optimizer reaches the 0.55 val target, RMSProp and AdaGrad first (200-217
  steps), SGD / momentum / Nesterov in 300, Adam in 333, L-BFGS in 38 iterations but
  the most seconds (each iteration is a full-batch pass plus a line search).
* performance profile on seconds to target (noisy on a shared machine): SGD, AdaGrad
  and momentum score about 0.8, RMSProp 0.74, Nesterov 0.50, Adam 0.40, L-BFGS 0.35.

``--sweep`` trains all seeds (and learning rates) of each minibatch optimizer as one
vmapped ``jax231.parallel.run_sweep`` program, the same training core as ``fit`` (its
explosion guard inside the loop, a diverged member frozen at its last good state;
L-BFGS keeps the loop; see sweep.py). With the defaults it gives the same table as the
loop up to float32 reassociation in the batched products (the MLP with Adam moves most:
final train loss within ~1%, the same steps to target). Its seconds are amortised over
the members of a call (sweep.py). Both paths compile once per (model, optimizer): the
learning rate and the seed are data. Timings on the shared 2-core CPU are in
``experiments/RESULTS.md``; the default stays ``sweep = False``.

The 2-D mode (``--mode=2d``) draws every path on an ill-conditioned quadratic,
Rosenbrock and a saddle point in a few seconds.

Learning rates: each default below was picked once by a 7-point log grid (one seed,
1500 steps, batch 128, 10**(-1.5..1.5) around a guess) on both models, by final train
loss; the best grid point was the same or adjacent for softmax regression and the MLP,
so one rate per optimizer is used for both:

    sgd 0.3 | momentum 0.03 | nesterov 0.03 | adagrad 0.05 | rmsprop 3e-3 | adam 3e-3

(momentum and Nesterov use ``v <- 0.9 v + g``, so their rate is ~ SGD's x (1 - 0.9);
AdaGrad's grid optimum for softmax regression, 0.1-0.16, diverged on the MLP, hence 0.05.)
L-BFGS uses the textbook unit step with a strong-Wolfe line search.

Override any field with ``--config.<field>=value`` (e.g. ``--config.batch_size=64``),
or the shortcut flags of ``main.py`` (``--optimizers=sgd,adam --lr=adam:1e-3 ...``).
"""

from __future__ import annotations

import ml_collections

from jax231 import training

from experiments.compare_optimizers.algoperf_config import get_algoperf_mini_config


def get_config(name: str = "") -> ml_collections.ConfigDict:
    """The default configuration (see the module docstring); ``config.py:<name>`` picks a named one."""
    if name:
        return named_config(name)
    c = ml_collections.ConfigDict()
    c.mode = "train"  # 'train': optimizers on a dataset; '2d': trajectories on 2-D surfaces.

    # --- data
    c.dataset = "mnist1d"  # name for jax231.pipelines.load_arrays; mnist1d needs no download.
    c.data_dir = ""  # data folder passed to the loader ('' = its default).
    c.val_size = 500  # val = the last val_size examples of the train split.
    c.train_size = 0  # keep only the first train_size training examples (0 = all).
    c.test_size = 0  # keep only the first test_size test examples (0 = all).

    # --- models (one panel per model in the curves)
    c.models = "linear,mlp"  # comma-separated names of jax231.models.get.
    c.model_configs = ml_collections.ConfigDict({
        "linear": {},  # softmax regression: a linear layer, 'small' init as in the course.
        "mlp": {"hidden_sizes": (100, 100), "activation": "relu"},  # two ReLU hidden layers.
    })  # extra keyword arguments per model name (num_classes is added).

    # --- optimizers
    c.optimizers = "sgd,momentum,nesterov,adagrad,rmsprop,adam,lbfgs"  # names of jax231.optimizers.
    c.learning_rates = ml_collections.ConfigDict({  # per optimizer; tuned once (see docstring).
        "sgd": 0.3,
        "momentum": 0.03,
        "nesterov": 0.03,
        "adagrad": 0.05,
        "rmsprop": 3e-3,
        "adam": 3e-3,
        "adamw": 3e-3,
        "lbfgs": 1.0,  # scale of L-BFGS's first line-search trial step.
    })
    c.lr_search = 0  # > 0: per (model, optimizer), that many log-uniform learning rates ...
    c.lr_search_decades = 1.5  # ... within default_lr * 10**[-d, d] are tried on the first seed,
    #                            and the one with the best final val accuracy is used for all seeds.
    c.schedule = "constant"  # 'constant', 'cosine', 'step' or 'warmup_cosine' (not for L-BFGS).
    c.warmup_steps = 50  # warm-up length of 'warmup_cosine'.
    c.lbfgs_history = 10  # curvature pairs kept by L-BFGS.

    # --- training
    c.batch_size = 128  # minibatch size of the first-order methods (L-BFGS is full batch).
    c.num_steps = 1000  # updates of the first-order methods (~36 epochs of 3500 examples).
    c.eval_every = 50  # steps between evaluations on val (rows of the curves).
    c.lbfgs_steps = 100  # L-BFGS iterations (each one full-batch pass plus its line search).
    c.lbfgs_eval_every = 5  # L-BFGS iterations between evaluations.
    c.seeds = "0,1,2"  # seeds (initialisation, data order); mean ± std over them.
    c.sweep = False  # True: all seeds x learning rates of a minibatch optimizer in one vmapped
    #                  jax231.parallel.run_sweep program (L-BFGS keeps the loop); see sweep.py.

    # --- report
    c.target_accuracy = ml_collections.ConfigDict({  # per model: the val accuracy whose first
        "linear": 0.30,  # crossing gives 'steps / seconds to target' and the performance profile;
        "mlp": 0.55,  # reached by every optimizer with the default rates.
    })
    c.default_target_accuracy = 0.5  # for models not listed in target_accuracy.
    c.tau_max = 4.0  # right end of the performance profile (AlgoPerf uses 4).
    c.tensorboard = training.tensorboard_available()  # every run's curves and an HParams table under
    #                                                 workdir/tensorboard (on when TensorFlow imports).
    c.profile_cost = "seconds"  # profile cost: 'seconds' to target (compilation excluded; AlgoPerf's
    #                             choice, noisy on a shared machine), 'epochs' or 'steps' to target.

    # --- 2-D mode
    c.surfaces = "quadratic,rosenbrock,saddle"  # surfaces drawn by --mode=2d.
    c.trajectory_steps = ml_collections.ConfigDict({"quadratic": 60, "rosenbrock": 1000, "saddle": 100})
    c.trajectory_lrs = ml_collections.ConfigDict({  # surface -> optimizer -> learning rate.
        "quadratic": {"sgd": 0.09, "momentum": 0.02, "nesterov": 0.02, "adagrad": 1.0,
                      "rmsprop": 0.1, "adam": 0.3, "adamw": 0.3, "lbfgs": 1.0},
        "rosenbrock": {"sgd": 1e-3, "momentum": 2e-4, "nesterov": 2e-4, "adagrad": 0.5,
                       "rmsprop": 0.01, "adam": 0.05, "adamw": 0.05, "lbfgs": 1.0},
        "saddle": {"sgd": 0.05, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.5,
                   "rmsprop": 0.05, "adam": 0.1, "adamw": 0.1, "lbfgs": 1.0},
    })
    return c


NAMED_CONFIGS = {"algoperf_mini": get_algoperf_mini_config}
"""Configs selected by ``--config=experiments/compare_optimizers/config.py:<name>``."""


def named_config(name: str) -> ml_collections.ConfigDict:
    """The config called ``name`` (a key of :data:`NAMED_CONFIGS`).

    Raises:
      FileNotFoundError: ``--config: expected ...``, listing the valid names (ml_collections defers
        an OSError of a config file to its first use, where main.py reports it in one line, exit 2).
    """
    if name not in NAMED_CONFIGS:
        raise FileNotFoundError(f"--config: expected config.py or config.py:<name> with name one of "
                                f"{', '.join(NAMED_CONFIGS)}, got {name!r}")
    return NAMED_CONFIGS[name]()
