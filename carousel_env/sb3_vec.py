"""A Stable-Baselines3 ``VecEnv`` over the native batched environment, and a leaner policy.

SB3's own ``DummyVecEnv`` steps one Python environment per user. :class:`CarouselSB3VecEnv`
instead steps a whole round of users of a :class:`~carousel_env.vector_env.CarouselVectorEnv`
with array operations, and turns the policy's actions into slates in one batched call
(:func:`~carousel_env.wrappers.scores_to_slates` or
:func:`~carousel_env.wrappers.repair_slates`)::

    from stable_baselines3 import PPO
    from carousel_env.sb3_vec import CarouselSB3VecEnv, FastMultiInputPolicy

    venv = CarouselSB3VecEnv(num_envs=4_096, action="score", n_users=50_000)
    model = PPO(FastMultiInputPolicy, venv, n_steps=1, batch_size=1_024,
                policy_kwargs={"log_std_init": -2.0})
    model.learn(total_timesteps=200_000)

Once the environment is batched, the policy's diagonal Gaussian over 862 scores costs
more than the environment. :class:`FastMultiInputPolicy` is SB3's ``MultiInputPolicy``
with the same Gaussian computed in fewer passes over the (n_users, 862) arrays (see
:class:`FastDiagGaussianDistribution`); it works with any ``VecEnv``, ``DummyVecEnv``
included, and with PPO and A2C.

Importing this module needs Stable-Baselines3 and PyTorch (``pip install
"carousel-env[sb3]"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    import torch as th
    from stable_baselines3.common.distributions import DiagGaussianDistribution
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy
    from stable_baselines3.common.type_aliases import Schedule
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn
    from torch.autograd.function import once_differentiable
    from torch.distributions import Normal
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "carousel_env.sb3_vec needs Stable-Baselines3 and PyTorch, which are not "
        f'installed ({error}); pip install "carousel-env[sb3]" fixes it'
    ) from error

from carousel_env.vector_env import CarouselVectorEnv
from carousel_env.wrappers import actions_to_slates, adapter_action_space

__all__ = ["CarouselSB3VecEnv", "FastDiagGaussianDistribution", "FastMultiInputPolicy"]


class CarouselSB3VecEnv(VecEnv):
    """SB3's vectorised-environment protocol for a round of carousel users at a time.

    Episodes: each user visit is an episode of length one, *terminated* (not truncated).
    The carousel problem is a contextual bandit: the slate shown to a user does not change
    who comes next, so no reward should flow from one visit to the next. Every step
    therefore returns ``dones`` all True, and SB3 computes each visit's return as its own
    reward (no bootstrapping, whatever ``gamma``); the returned observation is the next
    round's users, which is also the first observation of their new episodes. The
    horizon of the wrapped environment (``max_episode_steps``) plays no part.

    Infos: SB3 wants a list of ``num_envs`` dicts, and its loops over them read
    ``"TimeLimit.truncated"`` and ``"terminal_observation"`` (to bootstrap a truncated
    episode; off-policy algorithms also store the latter as the next observation),
    ``"episode"`` (written by ``VecMonitor``) and ``"is_success"``. Every visit's dict is
    ``{"TimeLimit.truncated": False}``, a new dict each (wrappers may write into them).
    The served users, which SB3 calls the terminal observations, are in
    :attr:`served_observation` as whole arrays, and the round's info arrays (``streams``,
    ``expected_reward``, ``optimal_reward``, ``regret``, ...) in :attr:`last_info`, for
    callbacks. Without a terminal observation SB3 stores the next round's user as the
    next observation of a finished episode, which no target reads (``done`` is 1).
    With ``terminal_observations=True`` every dict also holds ``"terminal_observation"``,
    the served user's ``{"features", "segment"}`` (views into :attr:`served_observation`),
    as SB3's own VecEnvs give it. It is off by default for its cost: a nested dict makes
    every info dict an object Python's garbage collector tracks, and a round of them,
    kept alive to the next step, sets off a full collection of the heap every few steps
    (about 2.5 us a visit in ``PPO.learn`` with 8,192 users a step).

    Observation: the environment's ``Dict(features=Box(97,), segment=Discrete)`` (SB3's
    ``MultiInputPolicy`` takes it as it is). Action: one user's adapter space,
    ``Box(-1, 1, (n_items,))`` for ``action="score"`` or ``MultiDiscrete([n_items] *
    slate_size)`` for ``"multidiscrete"`` (see :mod:`carousel_env.wrappers`).
    Rewards are float32 (num_envs,), 1.0 where the user streamed.

    Args:
        env: the batched environment to drive (a ``CarouselVectorEnv``, possibly inside
            Gymnasium vector wrappers). If None, one is built from ``env_kwargs`` with
            ``max_episode_steps=None``.
        action: the action adapter, ``"score"`` (default) or ``"multidiscrete"``.
        terminal_observations: also put each served user's observation in its info dict
            under ``"terminal_observation"`` (default False; see "Infos" above).
        **env_kwargs: arguments of :class:`~carousel_env.vector_env.CarouselVectorEnv`
            (``num_envs``, ``users``, ``n_users``, ``slate_size``, ...), only without
            ``env``.

    Limitations: one generator drives the whole round, so ``seed(s)`` seeds the round
    (the per-environment seeds ``s + i`` that SB3 hands out are not used separately), and
    ``env_method``/``set_attr`` act once on the shared environment whatever ``indices``.

    Attributes:
        served_observation: the observation the last ``step`` served (dict of
            (num_envs, ...) arrays), None before the first step.
        last_info: the wrapped environment's info of the last ``reset`` or ``step``
            (dict of (num_envs, ...) arrays).
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv | None = None,
        *,
        action: str = "score",
        terminal_observations: bool = False,
        **env_kwargs: Any,
    ) -> None:
        if not isinstance(terminal_observations, bool | np.bool_):
            raise TypeError(
                f"`terminal_observations` must be a bool; got {terminal_observations!r}"
            )
        if env is None:
            env_kwargs.setdefault("max_episode_steps", None)
            env = CarouselVectorEnv(**env_kwargs)
        elif env_kwargs:
            raise ValueError(
                f"give either `env` or the environment's arguments, not both; got env and "
                f"{sorted(env_kwargs)}"
            )
        if not isinstance(env, gym.vector.VectorEnv) or not isinstance(
            env.unwrapped, CarouselVectorEnv
        ):
            raise TypeError(
                f"`env` must be a CarouselVectorEnv (or a vector wrapper around one); got "
                f"{type(env).__name__}"
            )
        self.env = env
        carousel = env.unwrapped
        self.n_items = int(carousel.sim.n_items)
        self.slate_size = int(carousel.slate_size)
        self.action = action
        self.terminal_observations = bool(terminal_observations)
        action_space = adapter_action_space(action, self.n_items, self.slate_size)
        super().__init__(env.num_envs, carousel.single_observation_space, action_space)

        self.last_info: dict[str, Any] = {}
        self.served_observation: dict[str, np.ndarray] | None = None
        self._actions: np.ndarray | None = None
        self._observation: dict[str, np.ndarray] | None = None
        self._dones = np.ones(self.num_envs, dtype=bool)
        self._dones.setflags(write=False)

    # -- the stepping protocol ------------------------------------------------------------

    def reset(self) -> dict[str, np.ndarray]:
        """Draw a round of users; uses the seed given to :meth:`seed`, if any, once."""
        seed = self._seeds[0]
        observation, info = self.env.reset(seed=None if seed is None else int(seed))
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._observation = observation
        self.last_info = info
        return observation

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Serve the round; every visit ends its episode (see the class docstring).

        Returns:
            ``(observation, rewards, dones, infos)``: the next round's observation (dict
            of (num_envs, ...) arrays), float32 (num_envs,), bool (num_envs,) all True,
            and a list of num_envs dicts (see "Infos" in the class docstring).
        """
        actions, self._actions = self._actions, None
        if self._observation is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if actions is None:
            raise RuntimeError("step_wait() called without a pending step_async(actions)")
        slates = actions_to_slates(self.action, actions, self.n_items, self.slate_size)

        served = self._observation
        observation, rewards, _, _, info = self.env.step(slates)
        self._observation = observation
        self.served_observation = served
        self.last_info = info

        # SB3 loops over these in Python. A dict of atomic values only is not tracked by
        # the garbage collector, so a round of them never triggers a full collection.
        if self.terminal_observations:
            features = served["features"]
            infos = [
                {
                    "terminal_observation": {"features": features[i], "segment": segment},
                    "TimeLimit.truncated": False,
                }
                for i, segment in enumerate(served["segment"].tolist())
            ]
        else:
            infos = [{"TimeLimit.truncated": False} for _ in range(self.num_envs)]
        return observation, rewards.astype(np.float32), self._dones.copy(), infos

    def close(self) -> None:
        self.env.close()

    # -- attribute access: one shared environment -----------------------------------------

    def _indices(self, indices: None | int | Iterable[int]) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int | np.integer):
            return [int(indices)]
        return list(indices)

    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        """The shared environment's attribute, once per index."""
        value = getattr(self.env.unwrapped, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(
        self, attr_name: str, value: Any, indices: None | int | Iterable[int] = None
    ) -> None:
        """Set the attribute on the shared environment (once, whatever ``indices``)."""
        setattr(self.env.unwrapped, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: None | int | Iterable[int] = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call the method once on the shared environment; its result once per index."""
        result = getattr(self.env.unwrapped, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._indices(indices))

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: None | int | Iterable[int] = None
    ) -> list[bool]:
        """Always False: there are no per-user Gymnasium environments to wrap."""
        return [False] * len(self._indices(indices))


# -- a leaner Gaussian policy ---------------------------------------------------------------

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class _GaussianLogProb(th.autograd.Function):
    """``log N(a | mu, diag(exp(log_std))**2)`` summed over the action dimensions.

    Shapes: ``actions`` and ``mean`` (n, d), ``log_std`` (d,); result (n,). With
    ``z = (a - mu) * exp(-log_std)`` the result is ``-0.5 * |z|**2 - sum(log_std) -
    d * log(sqrt(2 pi))``, and the gradients are written out so that autograd keeps
    fewer (n, d) temporaries: for an upstream gradient ``g`` (n,),
    ``d/d mu = g z exp(-log_std)``, ``d/d a = -d/d mu`` and
    ``d/d log_std = sum_rows(g z**2) - sum(g)``. Three passes over (n, d) forward and
    four backward, against about twelve for the same expression left to autograd.
    """

    @staticmethod
    def forward(ctx: Any, actions: th.Tensor, mean: th.Tensor, log_std: th.Tensor) -> th.Tensor:
        inv_std = th.exp(-log_std)
        z = (actions - mean).mul_(inv_std)
        ctx.save_for_backward(z, inv_std)
        square_norm = th.linalg.vector_norm(z, dim=-1).square()
        return -0.5 * square_norm - (log_std.sum() + z.shape[-1] * _HALF_LOG_2PI)

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad: th.Tensor
    ) -> tuple[th.Tensor | None, th.Tensor | None, th.Tensor | None]:
        z, inv_std = ctx.saved_tensors
        weighted = z * grad.unsqueeze(-1)
        grad_mean = weighted * inv_std
        grad_actions = -grad_mean if ctx.needs_input_grad[0] else None
        grad_log_std = None
        if ctx.needs_input_grad[2]:
            grad_log_std = weighted.mul_(z).sum(0) - grad.sum()
        return grad_actions, grad_mean if ctx.needs_input_grad[1] else None, grad_log_std


class FastDiagGaussianDistribution(DiagGaussianDistribution):
    """SB3's diagonal Gaussian (state-independent standard deviation), in fewer passes.

    The same distribution as SB3's ``DiagGaussianDistribution``, which builds a
    ``torch.distributions.Normal`` over the whole (n, action_dim) batch: the standard
    deviation broadcast to that shape, a logarithm of every entry, argument validation,
    and five more element-wise passes for each log-probability. Here, with mean ``mu``
    (n, d) and ``log_std`` (d,):

    - ``sample()``: ``mu + eps * exp(log_std)``, ``eps`` standard normal, drawn by the
      same torch call as SB3's, so the same generator state gives bit-for-bit the same
      actions; the noise is scaled and shifted in place when no gradient is recorded;
    - ``log_prob(a)``: ``-0.5 * sum(((a - mu) / std) ** 2) - sum(log_std) -
      d * log(sqrt(2 pi))``, the sums over the action dimensions; for the action just
      sampled, ``(a - mu) / std`` is ``eps`` and its squared norm was kept at sampling;
      for any other, a hand-written gradient spares autograd's temporaries;
    - ``entropy()``: ``sum(log_std) + d * (0.5 + log(sqrt(2 pi)))`` for every row (the
      same for all of them: the standard deviation does not depend on the state).

    Values agree with SB3's to float32 rounding, and gradients flow to ``mu`` and
    ``log_std`` as there. No torch setting is touched (no global switch of argument
    validation). :attr:`distribution` builds the equivalent ``Normal`` on demand for code
    that reads it.
    """

    def __init__(self, action_dim: int) -> None:
        super().__init__(action_dim)
        self.mean_actions: th.Tensor | None = None
        self.log_std: th.Tensor | None = None
        self._sample: th.Tensor | None = None
        self._noise_square_norm: th.Tensor | None = None

    @property
    def distribution(self) -> Normal:  # type: ignore[override]
        """The equivalent ``torch.distributions.Normal``, (n, action_dim), built on demand."""
        if self.mean_actions is None or self.log_std is None:
            raise RuntimeError("call proba_distribution() before reading the distribution")
        return Normal(self.mean_actions, th.ones_like(self.mean_actions) * self.log_std.exp())

    def proba_distribution(
        self, mean_actions: th.Tensor, log_std: th.Tensor
    ) -> FastDiagGaussianDistribution:
        """Set the mean, (n, action_dim), and the log standard deviation, (action_dim,)."""
        self.mean_actions, self.log_std = mean_actions, log_std
        self._sample = self._noise_square_norm = None
        return self

    def log_prob(self, actions: th.Tensor) -> th.Tensor:
        """Log-density of each row of ``actions``, (n, action_dim) -> (n,)."""
        if actions is self._sample:
            square_norm = self._noise_square_norm
            return -0.5 * square_norm - (self.log_std.sum() + self.action_dim * _HALF_LOG_2PI)
        mean, log_std = self.mean_actions, self.log_std
        if actions.shape == mean.shape and mean.ndim == 2 and log_std.shape == mean.shape[1:]:
            return _GaussianLogProb.apply(actions, mean, log_std)
        square_norm = ((actions - mean) / log_std.exp()).square().sum(-1)
        return -0.5 * square_norm - (log_std.sum() + self.action_dim * _HALF_LOG_2PI)

    def entropy(self) -> th.Tensor:
        """Entropy of each row's Gaussian, (n,)."""
        entropy = self.log_std.sum() + self.action_dim * (0.5 + _HALF_LOG_2PI)
        return entropy.expand(self.mean_actions.shape[:-1])

    def sample(self) -> th.Tensor:
        """One action per row, (n, action_dim), reparametrised as SB3's."""
        noise = th.empty_like(self.mean_actions).normal_()
        # One pass, no (n, action_dim) temporary; the noise is a constant (no gradient).
        self._noise_square_norm = th.linalg.vector_norm(noise.detach(), dim=-1).square()
        if th.is_grad_enabled() and (
            self.mean_actions.requires_grad or self.log_std.requires_grad
        ):
            self._sample = self.mean_actions + noise * self.log_std.exp()
        else:
            # In place: one (n, action_dim) array fewer to allocate; same values.
            self._sample = noise.mul_(self.log_std.exp()).add_(self.mean_actions)
        return self._sample

    def mode(self) -> th.Tensor:
        """The mean, (n, action_dim)."""
        return self.mean_actions


class FastMultiInputPolicy(MultiInputActorCriticPolicy):
    """SB3's ``MultiInputPolicy`` (actor-critic on a ``Dict`` observation), leaner Gaussian.

    For a ``Box`` action without gSDE the action distribution is
    :class:`FastDiagGaussianDistribution` instead of SB3's ``DiagGaussianDistribution``:
    the same parameters (``action_net``, ``log_std``), the same actions for the same
    torch generator state, the same log-probabilities and entropies up to float32
    rounding; with 862 scores ``PPO.learn`` runs about twice as fast with it. Any other
    action space (the multidiscrete adapter) or ``use_sde=True`` keeps SB3's
    distribution. Pass the class where SB3 takes a policy: ``PPO(FastMultiInputPolicy,
    venv, ...)`` or ``A2C(...)``.
    """

    def _build(self, lr_schedule: Schedule) -> None:
        if type(self.action_dist) is DiagGaussianDistribution:
            self.action_dist = FastDiagGaussianDistribution(self.action_dist.action_dim)
        super()._build(lr_schedule)
