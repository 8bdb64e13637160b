"""Instructor and workshop commands, reached through one console command, ``dltomo``.

``cli``        ``dltomo <subcommand>``: the entry point below
``doctor``     ``dltomo doctor``: is this computer ready for the workshop?
``release``    ``dltomo release``: student copies from the solution sources
``grade``      ``dltomo grade``: grade a class's notebooks, with or without nbgrader
``generator``  ``dltomo generator``: rebuild the GAN generator shipped in ``data/``
``diffusion``  ``dltomo diffusion``: rebuild the diffusion model shipped in ``data/``
``reconstructors``  ``dltomo reconstructors``: rebuild lesson 12's shipped networks
``ct_slices``  ``dltomo ctslices``: rebuild the real CT slices shipped in ``data/``
``rebuild``    the options and the recorded command line that every rebuild command shares

Importing a tool never imports PyTorch or matplotlib, so that ``dltomo doctor`` can say
what is wrong when they are broken.
"""
