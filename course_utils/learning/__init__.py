"""Learning to reconstruct.

``networks``     the U-Net (FBPConvNet) and a parameter counter (lesson 03)
``training``     one training loop with progress bar, live plot, early stopping (lesson 03)
``checkpoints``  saving and loading trained networks, one file format (lessons 03 and 08)
``evaluation``   PSNR / SSIM / time per method with paired 95 % intervals (lesson 03)
``gan``          a small GAN, the shipped generator, latent reconstruction (lesson 08)
``self_supervised``  Noise2Inverse and the blind-spot baseline (lesson 10)
``diffusion``    a small diffusion model, its shipped weights, posterior sampling (lesson 11)
``primal_dual``  learned primal-dual (lesson 07), movable to another scanner (lesson 12)
``reconstructors``  lesson 12's shipped U-Net ensemble and learned primal-dual
``robustness``   worst-case perturbations, data consistency, calibration (lesson 12)
``memory``       a memory meter for any device, checkpointed learned descent (lesson 13)
"""
