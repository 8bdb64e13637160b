"""Learning to reconstruct.

``networks``     the U-Net (FBPConvNet) and a parameter counter (lesson 03)
``training``     one training loop with progress bar, live plot, early stopping (lesson 03)
``checkpoints``  saving and loading trained networks, one file format (lessons 03 and 08)
``evaluation``   PSNR / SSIM / time per method with paired 95 % intervals (lesson 03)
``gan``          a small GAN, the shipped generator, latent reconstruction (lesson 08)
"""
