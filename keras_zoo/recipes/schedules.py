"""Learning-rate schedules Keras does not ship, registered so that `.keras` files holding them load.

`AnnealingDecay` is Ganin et al.'s annealing for domain-adversarial training (JMLR 2016, section 5.2.2):
mu_p = mu_0 / (1 + alpha p)^beta, p the training progress from 0 to 1. Keras's `InverseTimeDecay` is
the case beta = 1 only.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_zoo")
class AnnealingDecay(keras.optimizers.schedules.LearningRateSchedule):
    """mu_0 / (1 + alpha * min(step / total_steps, 1)) ** beta.

    Args:
        initial_learning_rate: mu_0.
        total_steps: steps over which the progress p runs from 0 to 1.
        alpha, beta: the paper's 10 and 0.75.
    """

    def __init__(self, initial_learning_rate: float, total_steps: int, alpha: float = 10.0, beta: float = 0.75):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.alpha = float(alpha)
        self.beta = float(beta)

    def __call__(self, step):
        progress = ops.minimum(ops.cast(step, "float32") / float(self.total_steps), 1.0)
        return self.initial_learning_rate / ops.power(1.0 + self.alpha * progress, self.beta)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "total_steps": self.total_steps,
                "alpha": self.alpha, "beta": self.beta}
