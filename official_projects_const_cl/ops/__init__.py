"""Pure tensor / numpy functions shared by the data layer and the models."""
