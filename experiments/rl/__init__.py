"""rl: DQN, REINFORCE, A2C and PPO on gymnax CartPole-v1, many seeds per program (see config.py).

Modules: ``config`` (defaults, command, measured results), ``main`` (flags only),
``experiment`` (validation, agents, timed training programs), ``report`` (tables,
curves, optimizer comparison, summary lines).
"""
